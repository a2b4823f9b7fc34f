/** Minimal ANSI styling: on for terminals, off for pipes, NO_COLOR and --no-color. */
export interface Style {
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
  cyan(s: string): string;
}

const wrap = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

export const colors: Style = {
  green: wrap(32, 39),
  yellow: wrap(33, 39),
  red: wrap(31, 39),
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  cyan: wrap(36, 39),
};

const id = (s: string) => s;
export const plain: Style = { green: id, yellow: id, red: id, bold: id, dim: id, cyan: id };

export function styleFor(stream: NodeJS.WriteStream, disabled = false): Style {
  return !disabled && stream.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb' ? colors : plain;
}
