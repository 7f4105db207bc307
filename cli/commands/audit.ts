// sigil audit tail|verify|export|verify-export|proof (docs/cli.md). `verify` asks the API to
// verify the chain in ranges (a progress bar on a TTY) and names the first bad index;
// `verify-export` and `proof` check signatures and proofs here, with the service's public keys.
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { SingleBar } from "cli-progress";
import type { AuditEvent } from "../../sdk";
import { resolverFromJwks, verifyExport } from "../../shared/audit";
import { verifyEd25519 } from "../../shared/crypto";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, type Io, paint, readJsonFile } from "../output";
import { verifyEventInclusion } from "../verify";

const int = (s: string | undefined, name: string): number | undefined => {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Failure(EXIT.usage, `--${name} must be a non-negative integer`);
  return n;
};

function eventLine(io: Io, e: AuditEvent): string {
  const c = paint(io);
  const sev = String((e.details as { severity?: unknown } | undefined)?.severity ?? "");
  return `${c.dim(String(e.index).padStart(6))} ${e.timestamp} ${c.bold(e.eventType)} ${e.agentId}${sev ? ` [${sev}]` : ""}`;
}

const tail = defineCommand({
  meta: { name: "tail", description: "The latest audit events; -f follows new ones" },
  args: {
    ...targetArgs,
    n: { type: "string", description: "how many (default 20)" },
    follow: {
      type: "boolean",
      alias: "f",
      description: "keep printing new events",
      default: false,
    },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const n = int(args.n, "n") ?? 20;
    // The latest signed checkpoint may trail the log: read on from just before it to the end.
    const size = (await sigil.audit.checkpoint()).treeSize;
    let from = Math.max(0, size - n);
    let first = true;
    let pending: AuditEvent[] = [];
    for (;;) {
      const page = await sigil.audit.list({ from, limit: 500 });
      from += page.events.length;
      pending = first ? [...pending, ...page.events].slice(-n) : [...pending, ...page.events];
      if (page.events.length === 500) continue;
      for (const e of pending) io.out(args.json ? JSON.stringify(e) : eventLine(io, e));
      pending = [];
      first = false;
      if (!args.follow) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  },
});

const verify = defineCommand({
  meta: {
    name: "verify",
    description: "Verify the chain on the API (signatures, links, Merkle leaves)",
  },
  args: {
    ...targetArgs,
    from: { type: "string", description: "first index (default 0)" },
    to: { type: "string", description: "end index, exclusive (default: the tree size)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const from = int(args.from, "from") ?? 0;
    const to = int(args.to, "to") ?? (await sigil.audit.checkpoint()).treeSize;
    const step = 1000;
    const bar =
      io.tty && !args.json
        ? new SingleBar({ format: "verifying [{bar}] {value}/{total}", stream: process.stderr })
        : undefined;
    bar?.start(Math.max(0, to - from), 0);
    let checked = 0;
    try {
      for (let at = from; at < to; at += step) {
        const end = Math.min(to, at + step);
        const r = await sigil.audit.verify({ from: at, to: end });
        checked += r.checked;
        bar?.update(end - from);
        if (!r.valid) {
          bar?.stop();
          const bad = r.firstInvalid;
          emit(io, args.json, { valid: false, checked, firstInvalid: bad }, () =>
            paint(io).red(`invalid at index ${bad?.index}: ${bad?.reason}`),
          );
          process.exitCode = EXIT.failed;
          return;
        }
      }
    } finally {
      bar?.stop();
    }
    emit(
      io,
      args.json,
      { valid: true, checked, from, to },
      () => `valid: ${checked} events [${from}, ${to})`,
    );
  },
});

const exportCmd = defineCommand({
  meta: { name: "export", description: "Write an NDJSON export that verifies offline" },
  args: {
    ...targetArgs,
    out: { type: "string", required: true, description: "file to write", valueHint: "file" },
    from: { type: "string", description: "first index" },
    to: { type: "string", description: "end index, exclusive" },
  },
  async run({ args }) {
    const io = defaultIo();
    const q: { from?: number; to?: number } = {};
    const from = int(args.from, "from");
    const to = int(args.to, "to");
    if (from !== undefined) q.from = from;
    if (to !== undefined) q.to = to;
    const text = await (await client(args)).audit.export(q);
    await writeFile(args.out, text, { flag: "wx" }).catch((e: Error) => {
      throw new Failure(EXIT.failed, `cannot write ${args.out}: ${e.message}`);
    });
    const lines = text.split("\n").filter(Boolean).length;
    emit(io, args.json, { out: args.out, lines }, () => `wrote ${args.out} (${lines} lines)`);
  },
});

const verifyExportCmd = defineCommand({
  meta: {
    name: "verify-export",
    description: "Verify an NDJSON export offline with the service's JWK Set",
  },
  args: {
    file: { type: "positional", required: true, description: "the export" },
    keys: {
      type: "string",
      required: true,
      description: "JWK Set (GET /.well-known/sigil/keys)",
      valueHint: "file",
    },
    json: { type: "boolean", description: "print data as JSON", default: false },
  },
  async run({ args }) {
    const io = defaultIo();
    let resolver: ReturnType<typeof resolverFromJwks>;
    try {
      resolver = resolverFromJwks(await readJsonFile(args.keys));
    } catch (e) {
      throw new Failure(EXIT.usage, `${args.keys}: ${(e as Error).message}`);
    }
    // Text chunks as read: verifyExport splits the lines itself.
    const chunks = (async function* () {
      for await (const chunk of createReadStream(args.file, { encoding: "utf8" }))
        yield chunk as string;
    })();
    let report: Awaited<ReturnType<typeof verifyExport>>;
    try {
      report = await verifyExport(chunks, { keys: resolver, verify: verifyEd25519 });
    } catch (e) {
      throw new Failure(EXIT.usage, `${args.file}: ${(e as Error).message}`);
    }
    emit(io, args.json, report, () =>
      report.valid
        ? `valid: ${report.checked} events`
        : paint(io).red(
            `invalid at index ${report.firstInvalid?.index}: ${report.firstInvalid?.reason}`,
          ),
    );
    if (!report.valid) process.exitCode = EXIT.failed;
  },
});

const proof = defineCommand({
  meta: {
    name: "proof",
    description: "Fetch and check an event's inclusion proof against the signed checkpoint",
  },
  args: {
    ...targetArgs,
    index: { type: "positional", required: true, description: "event index" },
  },
  async run({ args }) {
    const io = defaultIo();
    const index = int(args.index, "index")!;
    const v = await verifyEventInclusion(await client(args), index);
    emit(io, args.json, v, () =>
      v.ok
        ? [
            ...(v.event ? [eventLine(io, v.event)] : []),
            paint(io).green(`✓ ${v.detail}`),
            ...fields({ rootHash: v.checkpoint?.rootHash, checkpointKid: v.checkpoint?.kid }),
          ]
        : paint(io).red(`✗ ${v.detail}`),
    );
    if (!v.ok) process.exitCode = EXIT.failed;
  },
});

export const audit = defineCommand({
  meta: { name: "audit", description: "Read, verify, export and prove the audit trail" },
  subCommands: { tail, verify, export: exportCmd, "verify-export": verifyExportCmd, proof },
});
