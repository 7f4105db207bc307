// sigil compliance frameworks|generate|show|verify (docs/cli.md, docs/compliance.md). `verify`
// checks a report here, with the service's public keys (a JWK Set file, or fetched): the report's
// signature, its checkpoint, every cited event's inclusion proof and, with a newer checkpoint,
// that the log was not rewritten since. The check itself is shared/compliance verifyReportWithKeys.
import { readFile, writeFile } from "node:fs/promises";
import { defineCommand } from "citty";
import type { ComplianceReport, Sigil } from "../../sdk";
import { resolverFromJwks } from "../../shared/audit";
import { verifyReportWithKeys } from "../../shared/compliance";
import { verifyEd25519 } from "../../shared/crypto";
import { client, publicClient, targetArgs } from "../context";
import {
  defaultIo,
  EXIT,
  emit,
  Failure,
  fields,
  type Io,
  paint,
  readJsonFile,
  table,
} from "../output";

/** Any date Date.parse reads, sent as the API's RFC 3339 UTC with milliseconds. */
function instant(s: string | undefined, name: string): string | undefined {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw new Failure(EXIT.usage, `--${name} is not a date: ${s}`);
  return new Date(t).toISOString();
}

async function writeNew(path: string, text: string): Promise<void> {
  await writeFile(path, text, { flag: "wx", mode: 0o600 }).catch((e: Error) => {
    throw new Failure(EXIT.failed, `cannot write ${path}: ${e.message}`);
  });
}

function summary(io: Io, r: ComplianceReport): string[] {
  const c = paint(io);
  const status = (s: string) => (s === "met" ? c.green(s) : s === "not_met" ? c.red(s) : c.dim(s));
  return [
    ...fields({
      reportId: r.reportId,
      framework: `${r.framework} ${r.version} (${r.frameworkName})`,
      period: `${r.period.from} – ${r.period.to} (events ${r.range.from}–${r.range.to})`,
      score: `${r.score} %`,
      checkpoint: `tree size ${r.checkpoint.treeSize}`,
    }),
    table(
      ["control", "reference", "status", "examined", "findings"],
      r.controls.map((x) => [
        x.id,
        x.reference,
        status(x.status),
        x.evidence.count,
        x.findings.join("; "),
      ]),
    ),
  ];
}

/** --out writes the JSON, --html the printable page (never over an existing file). */
async function save(sigil: Sigil, r: ComplianceReport, out?: string, html?: string) {
  if (out !== undefined) await writeNew(out, `${JSON.stringify(r, null, 2)}\n`);
  if (html !== undefined) await writeNew(html, await sigil.compliance.html(r.reportId));
}

const saveArgs = {
  out: { type: "string", description: "write the signed report (JSON) here", valueHint: "file" },
  html: { type: "string", description: "write the printable HTML page here", valueHint: "file" },
} as const;

const frameworks = defineCommand({
  meta: { name: "frameworks", description: "The frameworks reports can be made for" },
  args: { ...targetArgs },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).compliance.frameworks();
    emit(io, args.json, r, () =>
      table(
        ["id", "version", "name", "controls"],
        r.frameworks.map((f) => [f.id, f.version, f.name, f.controls.map((x) => x.id).join(", ")]),
      ),
    );
  },
});

const generate = defineCommand({
  meta: {
    name: "generate",
    description: "Generate a signed compliance report for a framework and period (auditor, admin)",
  },
  args: {
    ...targetArgs,
    framework: { type: "string", required: true, description: "hipaa, gdpr, sox or a custom id" },
    from: { type: "string", required: true, description: "period start (a date or RFC 3339)" },
    to: { type: "string", description: "period end (default: now)" },
    ...saveArgs,
  },
  async run({ args }) {
    const io = defaultIo();
    const from = instant(args.from, "from")!;
    const to = instant(args.to, "to") ?? new Date().toISOString();
    const sigil = await client(args);
    const r = await sigil.compliance.generate({ framework: args.framework, from, to });
    await save(sigil, r, args.out, args.html);
    emit(io, args.json, r, () => summary(io, r));
  },
});

const show = defineCommand({
  meta: { name: "show", description: "A stored report (auditor, admin)" },
  args: {
    ...targetArgs,
    id: { type: "positional", required: true, description: "report id" },
    ...saveArgs,
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const r = await sigil.compliance.get(args.id);
    await save(sigil, r, args.out, args.html);
    emit(io, args.json, r, () => summary(io, r));
  },
});

const verify = defineCommand({
  meta: {
    name: "verify",
    description:
      "Verify a report: signature, checkpoint, inclusion proofs; with --latest or --checkpoint, consistency with a newer log",
  },
  args: {
    ...targetArgs,
    report: { type: "positional", required: true, description: "report JSON file" },
    keys: {
      type: "string",
      description: "JWK Set file (offline); default: GET /.well-known/sigil/keys",
      valueHint: "file",
    },
    latest: {
      type: "boolean",
      description: "fetch today's signed checkpoint and the consistency proof to it",
      default: false,
    },
    checkpoint: {
      type: "string",
      description: "a newer signed checkpoint note (GET /v1/audit/checkpoint .checkpoint), offline",
      valueHint: "file",
    },
    consistency: {
      type: "string",
      description: "its consistency proof (GET /v1/audit/proofs/consistency JSON), offline",
      valueHint: "file",
    },
  },
  async run({ args }) {
    const io = defaultIo();
    if ((args.checkpoint === undefined) !== (args.consistency === undefined))
      throw new Failure(EXIT.usage, "--checkpoint and --consistency go together");
    if (args.latest && args.checkpoint !== undefined)
      throw new Failure(EXIT.usage, "--latest or --checkpoint, not both");
    const report = await readJsonFile(args.report);
    const jwks =
      args.keys !== undefined
        ? await readJsonFile(args.keys)
        : await (await publicClient(args)).wellKnownKeys();
    let keys: ReturnType<typeof resolverFromJwks>;
    try {
      keys = resolverFromJwks(jwks);
    } catch (e) {
      throw new Failure(
        EXIT.usage,
        `${args.keys ?? "the key set"}: not a JWK Set: ${(e as Error).message}`,
      );
    }
    let newer: { note: string; proof: string[] } | undefined;
    if (args.checkpoint !== undefined && args.consistency !== undefined) {
      const note = await readFile(args.checkpoint, "utf8").catch((e: Error) => {
        throw new Failure(EXIT.usage, `${args.checkpoint}: ${e.message}`);
      });
      const cons = (await readJsonFile(args.consistency)) as { proof?: unknown };
      if (!Array.isArray(cons.proof) || !cons.proof.every((p) => typeof p === "string"))
        throw new Failure(EXIT.usage, `${args.consistency}: no proof array`);
      newer = { note, proof: cons.proof };
    } else if (args.latest) {
      const size = (report as { checkpoint?: { treeSize?: unknown } }).checkpoint?.treeSize;
      if (typeof size !== "number")
        throw new Failure(EXIT.usage, `${args.report}: no checkpoint.treeSize`);
      const sigil = await client(args);
      const cp = await sigil.audit.checkpoint();
      const proof =
        cp.treeSize > size
          ? (await sigil.audit.consistencyProof({ from: size, to: cp.treeSize })).proof
          : [];
      newer = { note: cp.checkpoint, proof };
    }
    const v = await verifyReportWithKeys(report, {
      keys,
      verify: verifyEd25519,
      ...(newer ? { newer } : {}),
    });
    emit(io, args.json, v, () =>
      v.valid
        ? paint(io).green(
            `valid${newer ? "; the log extends the report's checkpoint (not rewritten since)" : ""}`,
          )
        : v.errors.map((e) => paint(io).red(`invalid: ${e}`)),
    );
    if (!v.valid) process.exitCode = EXIT.failed;
  },
});

export const compliance = defineCommand({
  meta: { name: "compliance", description: "Signed compliance reports and their offline check" },
  subCommands: { frameworks, generate, show, verify },
});
