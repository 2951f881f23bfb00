/**
 * An error the user can act on: the CLI prints only its message (no stack) and exits with 2.
 * Anything else that escapes is a bug and is printed with its stack (exit 1).
 */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export function isCliError(e: unknown): e is CliError {
  return e instanceof CliError;
}
