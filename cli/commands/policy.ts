// sigil policy push|get|ls|versions|diff|rollback|rm (the API) and check|test (offline, the same
// compiler the service uses). docs/cli.md.
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, paint, table } from "../output";
import { checkPolicy, parseCases, policyName, runCases } from "../policy-test";

async function readSource(file: string): Promise<string> {
  try {
    return file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (e) {
    throw new Failure(EXIT.usage, `cannot read ${file}: ${(e as Error).message}`);
  }
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

const nameArg = {
  name: { type: "positional", required: true, description: "policy name" },
} as const;

const push = defineCommand({
  meta: {
    name: "push",
    description: "Put a policy document (admin); nothing changes if it does not compile",
  },
  args: {
    ...targetArgs,
    file: { type: "positional", required: true, description: "policy file, or - for stdin" },
    name: { type: "string", description: "policy name (default: the file's base name)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const source = await readSource(args.file);
    const name = args.name ?? (args.file === "-" ? undefined : policyName(args.file));
    if (!name) throw new Failure(EXIT.usage, "reading stdin: give --name");
    const r = await (await client(args)).policies.put(name, source);
    emit(
      io,
      args.json,
      r,
      () => `${name}: version ${r.version} (sha256 ${r.sha256.slice(0, 12)}…)`,
    );
  },
});

const get = defineCommand({
  meta: { name: "get", description: "Print a policy document's current source" },
  args: { ...targetArgs, ...nameArg },
  async run({ args }) {
    const io = defaultIo();
    const d = await (await client(args)).policies.get(args.name);
    emit(io, args.json, d, () => d.source.replace(/\n$/, ""));
  },
});

const ls = defineCommand({
  meta: { name: "ls", description: "List policy documents" },
  args: { ...targetArgs },
  async run({ args }) {
    const io = defaultIo();
    const r = (await (await client(args)).policies.list()) as {
      policies?: { name: string; version: number; sha256: string; updatedAt?: string }[];
    };
    const rows = r.policies ?? [];
    emit(io, args.json, r, () =>
      table(
        ["name", "version", "sha256", "updated"],
        rows.map((p) => [p.name, p.version, p.sha256.slice(0, 12), p.updatedAt]),
      ),
    );
  },
});

interface VersionEntry {
  version: number;
  sha256: string;
  createdAt?: string;
}

async function versionsOf(
  args: Parameters<typeof client>[0],
  name: string,
): Promise<VersionEntry[]> {
  const r = (await (await client(args)).policies.versions(name)) as { versions?: VersionEntry[] };
  return r.versions ?? [];
}

const versions = defineCommand({
  meta: { name: "versions", description: "A policy's versions, oldest first" },
  args: { ...targetArgs, ...nameArg },
  async run({ args }) {
    const io = defaultIo();
    const v = await versionsOf(args, args.name);
    emit(io, args.json, { name: args.name, versions: v }, () =>
      table(
        ["version", "sha256", "created"],
        v.map((x) => [x.version, x.sha256.slice(0, 12), x.createdAt]),
      ),
    );
  },
});

/** A line diff (longest common subsequence): enough for policy documents (≤ 1 MiB). */
export function lineDiff(a: string, b: string): string[] {
  const x = a.split("\n");
  const y = b.split("\n");
  if (x.length * y.length > 4_000_000) return ["(documents too large to diff line by line)"];
  const n = x.length;
  const m = y.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i]![j] =
        x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push(`  ${x[i]}`);
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${x[i++]}`);
    else out.push(`+ ${y[j++]}`);
  }
  return out;
}

const diff = defineCommand({
  meta: {
    name: "diff",
    description: "Line diff between two versions of a policy (default: previous → current)",
  },
  args: {
    ...targetArgs,
    ...nameArg,
    from: { type: "string", description: "version to diff from" },
    to: { type: "string", description: "version to diff to" },
  },
  async run({ args }) {
    const io = defaultIo();
    const c = paint(io);
    const v = await versionsOf(args, args.name);
    if (v.length === 0) throw new Failure(EXIT.failed, `${args.name} has no versions`);
    const pick = (s: string | undefined, fallback: VersionEntry | undefined) => {
      if (s === undefined) return fallback;
      const found = v.find((x) => x.version === Number(s));
      if (!found) throw new Failure(EXIT.failed, `${args.name} has no version ${s}`);
      return found;
    };
    const to = pick(args.to, v[v.length - 1]);
    const from = pick(args.from, v[v.length - 2]);
    if (!to || !from) throw new Failure(EXIT.failed, `${args.name} has only one version`);
    const sigil = await client(args);
    const [a, b] = await Promise.all([
      sigil.policies.get(args.name, { version: from.version }),
      sigil.policies.get(args.name, { version: to.version }),
    ]);
    const lines = lineDiff(a.source, b.source);
    emit(
      io,
      args.json,
      { name: args.name, from: from.version, to: to.version, diff: lines },
      () => [
        `--- ${args.name} v${from.version}`,
        `+++ ${args.name} v${to.version}`,
        ...lines.map((l) => (l.startsWith("+") ? c.green(l) : l.startsWith("-") ? c.red(l) : l)),
      ],
    );
  },
});

const rollback = defineCommand({
  meta: { name: "rollback", description: "Make an earlier version current again (admin)" },
  args: {
    ...targetArgs,
    ...nameArg,
    version: { type: "positional", required: true, description: "version to restore" },
  },
  async run({ args }) {
    const io = defaultIo();
    const version = Number(args.version);
    if (!Number.isInteger(version) || version < 1)
      throw new Failure(EXIT.usage, "VERSION must be a positive integer");
    const r = await (await client(args)).policies.rollback(args.name, version);
    emit(io, args.json, r, () => `${args.name}: version ${r.version} is current`);
  },
});

const rm = defineCommand({
  meta: { name: "rm", description: "Delete a policy document (admin)" },
  args: { ...targetArgs, ...nameArg },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).policies.delete(args.name);
    emit(io, args.json, r, () => `deleted ${args.name}`);
  },
});

const check = defineCommand({
  meta: {
    name: "check",
    description: "Parse and compile a policy file offline; errors as file:line:col",
  },
  args: {
    file: { type: "positional", required: true, description: "policy file" },
    json: { type: "boolean", description: "print data as JSON", default: false },
  },
  async run({ args }) {
    const io = defaultIo();
    const { errors } = checkPolicy(args.file, await readSource(args.file));
    emit(io, args.json, { file: args.file, valid: errors.length === 0, errors }, () =>
      errors.length === 0
        ? `${args.file}: ok`
        : errors.map((e) => `${e.file}:${e.line}:${e.column}: ${e.message}`),
    );
    if (errors.length > 0) process.exitCode = EXIT.failed;
  },
});

const test = defineCommand({
  meta: { name: "test", description: "Evaluate a table of cases against a policy file offline" },
  args: {
    file: { type: "positional", required: true, description: "policy file" },
    cases: {
      type: "string",
      required: true,
      description: "cases file (YAML or JSON)",
      valueHint: "file",
    },
    json: { type: "boolean", description: "print data as JSON", default: false },
  },
  async run({ args }) {
    const io = defaultIo();
    const c = paint(io);
    let cases: ReturnType<typeof parseCases>;
    try {
      cases = parseCases(args.cases, await readSource(args.cases));
    } catch (e) {
      throw new Failure(EXIT.usage, (e as Error).message);
    }
    const checked = checkPolicy(args.file, await readSource(args.file), {
      ...(cases.mode ? { mode: cases.mode } : {}),
    });
    if (!checked.set) {
      for (const e of checked.errors) io.err(`${e.file}:${e.line}:${e.column}: ${e.message}`);
      throw new Failure(EXIT.failed, `${args.file} does not compile`);
    }
    let outcomes: ReturnType<typeof runCases>;
    try {
      outcomes = runCases(checked.set, cases.cases);
    } catch (e) {
      throw new Failure(EXIT.usage, (e as Error).message);
    }
    const failed = outcomes.filter((o) => !o.pass);
    const show = (x: { decision: string; approver?: string | undefined }) =>
      x.approver ? `${x.decision} (approver ${x.approver})` : x.decision;
    emit(
      io,
      args.json,
      {
        file: args.file,
        passed: outcomes.length - failed.length,
        failed: failed.length,
        cases: outcomes,
      },
      () => [
        ...outcomes.map((o) =>
          o.pass
            ? `${c.green("PASS")} ${o.name}`
            : `${c.red("FAIL")} ${o.name}: expected ${show(o.expected)}, got ${show(o.got)}${o.got.reason ? ` — ${o.got.reason}` : ""}`,
        ),
        `${outcomes.length - failed.length}/${outcomes.length} passed`,
      ],
    );
    if (failed.length > 0) process.exitCode = EXIT.failed;
  },
});

export const policy = defineCommand({
  meta: {
    name: "policy",
    description: "Policy documents: on the API, and checked or tested offline",
  },
  subCommands: { push, get, ls, versions, diff, rollback, rm, check, test },
});
