// sigil jobs run|get|wait|ls|cancel (docs/cli.md). `run` submits, streams the job's events (a spinner on a
// TTY while it waits), checks the worker's signature on the result and exits with the job's code.
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { createSpinner } from "nanospinner";
import type { JobRecord, JobSpec, JobStatus, Sigil } from "../../sdk";
import { isTerminal } from "../../shared/jobs";
import { JOB_STATUSES } from "../../shared/jobs/result";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, type Io, paint, table } from "../output";
import { verifyJobResult } from "../verify";
import { readStdin } from "./policy";

const IMAGES: Record<string, string> = { python: "sigil/python:1" };

/** The exit code of a finished job: its process's, 128 + n for a signal, 1 when it did not run. */
export function exitCodeOf(r: JobRecord): number {
  const res = r.result;
  if (r.status === "succeeded") return 0;
  if (res && typeof res.exitCode === "number" && res.exitCode !== 0)
    return Math.min(res.exitCode, 255);
  const signals: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  if (res?.signal && signals[res.signal]) return 128 + signals[res.signal]!;
  return EXIT.failed;
}

/** Prints a finished job's verdict line and returns whether its signature holds. */
async function report(io: Io, json: boolean, sigil: Sigil, jobId: string, r: JobRecord) {
  const c = paint(io);
  const verdict = r.result ? await verifyJobResult(sigil, jobId, r) : undefined;
  if (json) {
    io.out(
      JSON.stringify(
        { ...r, signatureVerified: verdict?.ok ?? null, verification: verdict?.detail ?? null },
        null,
        2,
      ),
    );
  } else {
    const mark =
      verdict === undefined
        ? ""
        : verdict.ok
          ? c.green(` ✓ ${verdict.detail}`)
          : c.red(` ✗ ${verdict.detail}`);
    io.err(
      `job ${jobId} ${r.status} on ${r.tier}${r.result ? ` in ${r.result.durationMs} ms` : ""}${r.reason ? ` (${String(r.reason)})` : ""}${mark}`,
    );
  }
  return verdict;
}

const run = defineCommand({
  meta: {
    name: "run",
    description:
      "Run a job and stream its output: sigil jobs run [FILE|-] [--language python] or -- cmd args",
  },
  args: {
    ...targetArgs,
    file: { type: "positional", required: false, description: "code to run, or - for stdin" },
    language: { type: "string", description: "language of the code (python, sh)" },
    image: {
      type: "string",
      description: "sandbox image (default by language, else sigil/busybox:1)",
    },
    timeout: { type: "string", description: "timeout in ms" },
    memory: { type: "string", description: "memory limit in MiB" },
  },
  async run({ args, rawArgs }) {
    const io = defaultIo();
    const dash = rawArgs.indexOf("--");
    const command = dash >= 0 ? rawArgs.slice(dash + 1) : undefined;
    if (!args.file && (!command || command.length === 0))
      throw new Failure(EXIT.usage, "give a code FILE (or - for stdin), or -- cmd args");
    const spec: JobSpec = {
      image: args.image ?? IMAGES[args.language ?? ""] ?? "sigil/busybox:1",
    };
    if (command && command.length > 0) spec.command = command;
    else {
      const file = args.file!;
      spec.code =
        file === "-"
          ? await readStdin()
          : await readFile(file, "utf8").catch((e: Error) => {
              throw new Failure(EXIT.usage, `cannot read ${file}: ${e.message}`);
            });
      spec.language = args.language ?? (file.endsWith(".py") ? "python" : "sh");
    }
    if (args.timeout) spec.timeoutMs = Number(args.timeout);
    if (args.memory) spec.limits = { memoryMb: Number(args.memory) };

    const sigil = await client(args);
    const accepted = await sigil.jobs.submit(spec);
    const spinner =
      io.tty && !args.json
        ? createSpinner(`job ${accepted.jobId} queued on ${accepted.tier}`, {
            stream: process.stderr,
          }).start()
        : undefined;
    try {
      for await (const e of sigil.jobs.events(accepted.jobId)) {
        if (e.event === "started") spinner?.update({ text: `job ${accepted.jobId} running` });
        if (e.event === "output" && !args.json) {
          spinner?.clear();
          const d = e.data as { stream?: string; data?: string };
          const write = d.stream === "stderr" ? process.stderr : process.stdout;
          write.write(d.data ?? "");
        }
        if (e.event === "finished") break;
      }
    } finally {
      spinner?.stop();
      spinner?.clear();
    }
    const record = await sigil.jobs.wait(accepted.jobId, 30_000);
    const verdict = await report(io, args.json, sigil, accepted.jobId, record);
    if (verdict && !verdict.ok) {
      process.exitCode = EXIT.failed;
      return;
    }
    process.exitCode = exitCodeOf(record);
  },
});

const idArg = { id: { type: "positional", required: true, description: "job id" } } as const;

function human(r: JobRecord): string[] {
  const { result, ...rest } = r;
  return fields({
    ...rest,
    ...(result
      ? {
          exitCode: result.exitCode,
          signal: result.signal,
          worker: result.workerId,
          resultKid: result.kid,
        }
      : {}),
  });
}

const get = defineCommand({
  meta: { name: "get", description: "Show a job and check its result's signature" },
  args: { ...targetArgs, ...idArg },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const r = await sigil.jobs.get(args.id);
    if (!args.json) for (const l of human(r)) io.out(l);
    const v = await report(io, args.json, sigil, args.id, r);
    if (v && !v.ok) process.exitCode = EXIT.failed;
  },
});

const wait = defineCommand({
  meta: { name: "wait", description: "Wait for a job to finish; exit with its code" },
  args: {
    ...targetArgs,
    ...idArg,
    timeout: { type: "string", description: "seconds to wait (default 300)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const deadline = Date.now() + Number(args.timeout ?? 300) * 1000;
    let r = await sigil.jobs.get(args.id);
    while (!isTerminal(r.status)) {
      if (Date.now() > deadline)
        throw new Failure(EXIT.failed, `job ${args.id} is still ${r.status}`);
      r = await sigil.jobs.wait(args.id, Math.min(30_000, Math.max(1000, deadline - Date.now())));
    }
    if (!args.json) for (const l of human(r)) io.out(l);
    const v = await report(io, args.json, sigil, args.id, r);
    process.exitCode = v && !v.ok ? EXIT.failed : exitCodeOf(r);
  },
});

const ls = defineCommand({
  meta: {
    name: "ls",
    description: "List jobs, newest first (an agent's own; all for admins and auditors)",
  },
  args: {
    ...targetArgs,
    status: { type: "string", description: `only this status (${JOB_STATUSES.join(", ")})` },
    limit: { type: "string", description: "at most this many jobs (default 20, at most 1000)" },
  },
  async run({ args }) {
    const io = defaultIo();
    if (args.status && !(JOB_STATUSES as readonly string[]).includes(args.status))
      throw new Failure(EXIT.usage, `unknown status ${args.status}`);
    const want = Number(args.limit ?? 20);
    if (!Number.isInteger(want) || want < 1 || want > 1000)
      throw new Failure(EXIT.usage, "--limit must be an integer from 1 to 1000");
    const sigil = await client(args);
    const jobs: JobRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await sigil.jobs.list({
        ...(args.status ? { status: args.status as JobStatus } : {}),
        limit: Math.min(100, want - jobs.length),
        ...(cursor ? { cursor } : {}),
      });
      jobs.push(...page.jobs);
      cursor = page.cursor;
    } while (cursor && jobs.length < want);
    emit(io, args.json, { jobs }, () =>
      table(
        ["jobId", "status", "tier", "image", "createdAt", "reason"],
        jobs.map((j) => [j.jobId, j.status, j.tier, j.image, j.createdAt, j.reason ?? ""]),
      ),
    );
  },
});

const cancel = defineCommand({
  meta: {
    name: "cancel",
    description: "Cancel a job: a queued one ends killed now, a running one is killed",
  },
  args: {
    ...targetArgs,
    ...idArg,
    reason: { type: "string", description: "why (recorded in the audit trail)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const out = await sigil.jobs.cancel(args.id, args.reason);
    emit(io, args.json, out, () =>
      out.outcome === "cancelled"
        ? `job ${args.id} cancelled (killed before it ran)`
        : out.outcome === "killing"
          ? `job ${args.id} is being killed on its worker (sigil jobs wait ${args.id})`
          : `job ${args.id} had already finished: ${out.job.status}`,
    );
  },
});

export const jobs = defineCommand({
  meta: { name: "jobs", description: "Run sandbox jobs and inspect them" },
  subCommands: { run, get, wait, ls, cancel },
});
