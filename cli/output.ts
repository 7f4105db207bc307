// How the CLI speaks (docs/cli.md): data as JSON with --json, tables otherwise; colours only on a
// TTY and never with NO_COLOR; one-line errors carrying the problem's type and detail; exit codes
// scripts can rely on.
import { readFile } from "node:fs/promises";
import Table from "cli-table3";
import pc from "picocolors";
import { SigilError } from "../sdk";

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A JSON file the user named; unreadable or not JSON is a usage error naming the file. */
export async function readJsonFile(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (e) {
    throw new Failure(EXIT.usage, `${path}: ${(e as Error).message}`);
  }
}

/** A failure the command has already described: its message is printed, then `code` is the exit. */
export class Failure extends Error {
  override readonly name = "Failure";
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
  /** stdout is a terminal: spinners, progress bars and colours may be used. */
  tty: boolean;
  color: boolean;
}

export function defaultIo(): Io {
  const tty = process.stdout.isTTY === true;
  // picocolors already honours NO_COLOR and FORCE_COLOR; colours also need a terminal.
  const color = tty && pc.isColorSupported && !("NO_COLOR" in process.env);
  return {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
    tty,
    color,
  };
}

export const paint = (io: Io) => pc.createColors(io.color);

/** Prints `data` as JSON, or through `human` for a person. */
export function emit(io: Io, json: boolean, data: unknown, human: () => string | string[]): void {
  if (json) {
    io.out(JSON.stringify(data, null, 2));
    return;
  }
  const text = human();
  for (const line of Array.isArray(text) ? text : [text]) io.out(line);
}

/** A plain table; cells are stringified, objects as compact JSON. */
export function table(head: string[], rows: unknown[][]): string {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows)
    t.push(
      r.map((c) =>
        c === undefined || c === null ? "" : typeof c === "object" ? JSON.stringify(c) : String(c),
      ),
    );
  return t.toString();
}

/** Key: value lines for one record. */
export function fields(o: Record<string, unknown>): string[] {
  const width = Math.max(0, ...Object.keys(o).map((k) => k.length));
  return Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(
      ([k, v]) =>
        `${k.padEnd(width)}  ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`,
    );
}

/** Maps any error to its one-line message and exit code. */
export function describeError(e: unknown): { code: ExitCode; line: string } {
  if (e instanceof Failure) return { code: e.code, line: e.message };
  if (e instanceof SigilError) {
    if (e.status === 0 && (e.code === "network" || e.code === "timeout"))
      return { code: EXIT.unreachable, line: `unreachable: ${e.detail ?? e.message}` };
    const detail = e.detail ? `: ${e.detail}` : e.title ? `: ${e.title}` : "";
    const fieldErrors = (e.errors ?? [])
      .slice(0, 3)
      .map((x) => {
        const f = x as { path?: unknown; message?: unknown; line?: unknown; column?: unknown };
        if (f.line !== undefined) return `${f.line}:${f.column}: ${f.message}`;
        return `${String(f.path ?? "")}: ${String(f.message ?? "")}`;
      })
      .join("; ");
    return {
      code: EXIT.failed,
      line: `${e.type}${detail}${fieldErrors ? ` (${fieldErrors})` : ""}`,
    };
  }
  if ((e as { name?: unknown })?.name === "CLIError")
    return { code: EXIT.usage, line: `usage: ${(e as Error).message}` };
  return { code: EXIT.failed, line: e instanceof Error ? e.message : String(e) };
}

/** An integer flag within [min, max], or a usage error naming it. */
export function intFlag(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Failure(EXIT.usage, `--${name} must be an integer from ${min} to ${max}`);
  return n;
}
