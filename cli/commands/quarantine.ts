// sigil quarantine ls|add|lift (docs/cli.md, docs/incidents.md "Quarantine").
import { defineCommand } from "citty";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, table } from "../output";

const ls = defineCommand({
  meta: { name: "ls", description: "List quarantines, newest first (admin, auditor)" },
  args: {
    ...targetArgs,
    active: { type: "boolean", description: "only those in force" },
    limit: { type: "string", description: "at most this many (1-500, default 100)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const limit = args.limit === undefined ? undefined : Number(args.limit);
    if (limit !== undefined && !Number.isInteger(limit))
      throw new Failure(EXIT.usage, "--limit must be an integer");
    const r = await sigil.quarantine.list({
      ...(args.active ? { active: "true" as const } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    emit(io, args.json, r, () =>
      table(
        ["id", "active", "target", "reason", "incident", "placed by", "placed at"],
        r.quarantines.map((q) => [
          q.id,
          q.active,
          Object.values(q.target).join(":"),
          q.reason,
          q.incidentId ?? "",
          q.placedBy,
          q.placedAt,
        ]),
      ),
    );
  },
});

const add = defineCommand({
  meta: { name: "add", description: "Quarantine a subject, a key or a worker (admin)" },
  args: {
    ...targetArgs,
    subject: { type: "string", description: "every key of this subject" },
    kid: { type: "string", description: "this key" },
    worker: { type: "string", description: "this worker id" },
    reason: { type: "string", required: true, description: "why (audited)" },
    incident: { type: "string", description: "the incident id it answers (must exist)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const given = [args.subject, args.kid, args.worker].filter((x) => x !== undefined);
    if (given.length !== 1)
      throw new Failure(EXIT.usage, "give exactly one of --subject, --kid, --worker");
    const sigil = await client(args);
    const target =
      args.subject !== undefined
        ? { subject: args.subject }
        : args.kid !== undefined
          ? { kid: args.kid }
          : { workerId: args.worker ?? "" };
    const r = await sigil.quarantine.place({
      ...target,
      reason: args.reason,
      ...(args.incident !== undefined ? { incidentId: args.incident } : {}),
    });
    emit(io, args.json, r, () => fields(r.quarantine as unknown as Record<string, unknown>));
  },
});

const lift = defineCommand({
  meta: { name: "lift", description: "Lift a quarantine (admin); revoked keys stay revoked" },
  args: {
    ...targetArgs,
    id: { type: "positional", required: true, description: "quarantine id" },
    reason: { type: "string", required: true, description: "why (audited)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const r = await sigil.quarantine.lift(args.id, args.reason);
    emit(io, args.json, r, () =>
      r.lifted ? `lifted ${r.quarantine.id}` : `${r.quarantine.id} was already lifted`,
    );
  },
});

export const quarantine = defineCommand({
  meta: { name: "quarantine", description: "Isolate subjects, keys and workers" },
  subCommands: { ls, add, lift },
});
