/**
 * What the CLI prints goes to an admin's terminal, and much of it comes from elsewhere: worker
 * error messages (which carry data: `invalid input syntax for type integer: "<data>"`), server
 * log lines, psql's messages, names read from the server. A terminal acts on control characters
 * in that text: it can set the window title, clear the screen, move the cursor over earlier
 * lines (fake output) or, with bidi overrides, show text in an order other than its bytes.
 * Everything the CLI prints goes through escapeControls, in the one place that writes a line.
 */

export interface EscapeOptions {
  /** keep line feeds and tabs (multi-line messages and their indentation); default false */
  multiline?: boolean;
}

/**
 * C0 controls, DEL, C1 controls (U+0080-U+009F: some terminals take U+009B as CSI), and the
 * invisible direction controls: LRM/RLM, ALM, the embeddings and overrides U+202A-U+202E and the
 * isolates U+2066-U+2069. Line/paragraph separators too: they break a line where none shows.
 */
const CONTROL_RE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const CONTROL_KEEP_LINES_RE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x80 ? '\\x' + code.toString(16).padStart(2, '0') : '\\u' + code.toString(16).padStart(4, '0');
}

/**
 * `text` with every control character written as an escape (`\x1b`, `\u009b`, `\u202e`), so
 * that it shows as text and the terminal acts on none of it. Backslashes are left alone: the
 * result is for reading, and escaping it again changes nothing.
 *
 * @param text what to print
 * @param opts `multiline: true` keeps `\n` and `\t` (everything else is escaped)
 */
export function escapeControls(text: string, opts: EscapeOptions = {}): string {
  return text.replace(opts.multiline ? CONTROL_KEEP_LINES_RE : CONTROL_RE, escapeOne);
}

/**
 * Writes one line (or a multi-line message) to stdout or stderr, escaped. A stream that fails
 * (a closed terminal or pipe: EIO, EPIPE) drops the text: output is a courtesy, and an error
 * there must not stop the caller half-way (dev's cleanup writes after a hangup).
 *
 * @param stream process.stdout or process.stderr
 * @param line the text, without the final newline
 */
export function printLine(stream: NodeJS.WriteStream, line: string): void {
  ignoreStreamErrors(stream);
  if (stream.destroyed || !stream.writable) return;
  try {
    stream.write(escapeControls(line, { multiline: true }) + '\n');
  } catch {
    /* see above */
  }
}

const guarded = new WeakSet<NodeJS.WriteStream>();

/** From now on, write errors on `stream` are dropped instead of ending the process. */
export function ignoreStreamErrors(stream: NodeJS.WriteStream): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', () => undefined);
}
