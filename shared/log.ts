// The logging port: structured JSON, one line per event. Every entry (the API on Node and on the
// edge, the worker) logs through it; `console` is the one sink both runtimes have.
export type LogLevel = "debug" | "info" | "warn" | "error";
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Errors go to stderr, the rest to stdout. */
const toConsole = (line: string, level: LogLevel) =>
  level === "error" ? console.error(line) : console.log(line);

export function jsonLogger(
  level: LogLevel = "info",
  write: (line: string, level: LogLevel) => void = toConsole,
): Logger {
  const emit = (lvl: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < rank[level]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }), lvl);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
