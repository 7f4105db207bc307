// sigil incidents ls|show|ack|resolve|false-positive|evidence|watch (docs/cli.md,
// docs/incidents.md): admins and auditors read incidents and follow their changes; admins move
// them forward with a reason (audited). Quarantines are lifted with `sigil quarantine lift`.
import { writeFile } from "node:fs/promises";
import { defineCommand } from "citty";
import type { Incident, IncidentState, Severity } from "../../shared/incidents";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, intFlag, table } from "../output";
import { watch, watchArgs } from "../watch";

const STATES: readonly IncidentState[] = [
  "open",
  "acknowledged",
  "mitigated",
  "resolved",
  "false_positive",
];
const SEVERITIES: readonly Severity[] = ["info", "low", "medium", "high", "critical"];

const idArg = { id: { type: "positional", required: true, description: "incident id" } } as const;

const who = (i: Incident) => [...i.subjects, ...i.keys, ...i.workers].join(",");

const oneLine = (data: unknown) => {
  const i = data as Incident;
  return `${i.incidentId}  ${i.severity}  ${i.state}  ${i.detector}  ${who(i)}`;
};

function human(i: Incident): string[] {
  return [
    ...fields({
      id: i.incidentId,
      severity: i.severity,
      state: i.state,
      detector: `${i.detector} (${i.category}, rules ${i.rulesVersion})`,
      opened: i.openedAt,
      updated: i.updatedAt,
      subjects: i.subjects.join(", ") || undefined,
      keys: i.keys.join(", ") || undefined,
      workers: i.workers.join(", ") || undefined,
      jobs: i.jobs.join(", ") || undefined,
      evidence: `events ${i.evidence.from}..${i.evidence.to}${i.evidence.bundle ? ", bundle stored" : ""}`,
    }),
    "timeline:",
    ...i.timeline.map(
      (t) => `  ${t.at}  ${t.change}  ${t.state}  by ${t.by}${t.reason ? `: ${t.reason}` : ""}`,
    ),
    ...(i.actions.length ? ["actions:"] : []),
    ...i.actions.map((a) => `  ${a.at}  ${a.action} ${a.target}  ${a.outcome}`),
  ];
}

function oneOf<T extends string>(flag: string, v: string | undefined, all: readonly T[]) {
  if (v !== undefined && !all.includes(v as T))
    throw new Failure(EXIT.usage, `--${flag} must be one of ${all.join(", ")}`);
  return v as T | undefined;
}

const ls = defineCommand({
  meta: { name: "ls", description: "Incidents newest first (admins, auditors)" },
  args: {
    ...targetArgs,
    state: { type: "string", description: STATES.join("|") },
    severity: { type: "string", description: SEVERITIES.join("|") },
    limit: { type: "string", description: "at most this many (1-1000, default 100)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const state = oneOf("state", args.state, STATES);
    const severity = oneOf("severity", args.severity, SEVERITIES);
    const limit = intFlag("limit", args.limit, 1, 1000);
    const page = await (await client(args)).incidents.list({
      ...(state ? { state } : {}),
      ...(severity ? { severity } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    emit(io, args.json, page, () =>
      table(
        ["id", "severity", "state", "detector", "who", "opened"],
        page.incidents.map((i) => [
          i.incidentId,
          i.severity,
          i.state,
          i.detector,
          who(i),
          i.openedAt,
        ]),
      ),
    );
  },
});

const show = defineCommand({
  meta: { name: "show", description: "One incident with its timeline and actions" },
  args: { ...targetArgs, ...idArg },
  async run({ args }) {
    const io = defaultIo();
    const i = await (await client(args)).incidents.get(args.id);
    emit(io, args.json, i, () => human(i));
  },
});

const move = (name: string, verb: "acknowledge" | "resolve" | "false-positive", text: string) =>
  defineCommand({
    meta: { name, description: `${text} (admins; audited with the reason)` },
    args: {
      ...targetArgs,
      ...idArg,
      reason: { type: "string", required: true, description: "why (audited)" },
    },
    async run({ args }) {
      const io = defaultIo();
      if (args.reason === "") throw new Failure(EXIT.usage, "--reason must not be empty");
      const i = await (await client(args)).incidents.move(args.id, verb, args.reason);
      emit(io, args.json, i, () => `${i.incidentId} ${i.state}`);
    },
  });

const evidence = defineCommand({
  meta: {
    name: "evidence",
    description: "The signed evidence bundle (export, checkpoint, inclusion proofs) as JSON",
  },
  args: {
    ...targetArgs,
    ...idArg,
    out: {
      type: "string",
      description: "write it to this file instead of stdout",
      valueHint: "file",
    },
  },
  async run({ args }) {
    const io = defaultIo();
    const bundle = await (await client(args)).incidents.evidence(args.id);
    const text = JSON.stringify(bundle, null, 2);
    if (args.out === undefined) return io.out(text);
    await writeFile(args.out, `${text}\n`, { flag: "wx" }).catch((e: Error) => {
      throw new Failure(EXIT.usage, `cannot write ${args.out}: ${e.message}`);
    });
    emit(io, args.json, { out: args.out }, () => `wrote ${args.out}`);
  },
});

const watchCmd = defineCommand({
  meta: {
    name: "watch",
    description: "Print every incident change as it happens (admins, auditors)",
  },
  args: { ...targetArgs, ...watchArgs },
  async run({ args }) {
    const sigil = await client(args);
    await watch(defaultIo(), args, (call) => sigil.incidents.events(call), oneLine);
  },
});

export const incidents = defineCommand({
  meta: { name: "incidents", description: "Read, follow and close security incidents" },
  subCommands: {
    ls,
    show,
    ack: move("ack", "acknowledge", "Acknowledge an incident"),
    resolve: move("resolve", "resolve", "Resolve an incident"),
    "false-positive": move("false-positive", "false-positive", "Mark an incident a false positive"),
    evidence,
    watch: watchCmd,
  },
});
