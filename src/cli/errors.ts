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

/**
 * A path the CLI will not write through: a symbolic link, something other than the directory or
 * regular file expected, a file with more than one name, or an entry that changed between two
 * steps. As root the CLI writes into directories that another OS user (the data directory's
 * owner) controls; following what that user placed there would let them aim root's writes and
 * chowns anywhere. The message names the path and what to do instead.
 */
export class UnsafePathError extends CliError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnsafePathError';
  }
}
