// sigil eval: one policy decision through the API (docs/cli.md). Exit 0 when allowed (with or
// without conditions), 1 when denied or waiting for approval.
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields } from "../output";

/** `@file.json` reads a file, `-` stdin is not offered (the request is small), else inline JSON. */
async function contextOf(arg: string | undefined): Promise<Record<string, unknown>> {
  if (arg === undefined) return {};
  let text = arg;
  if (arg.startsWith("@")) {
    try {
      text = await readFile(arg.slice(1), "utf8");
    } catch (e) {
      throw new Failure(EXIT.usage, `cannot read ${arg.slice(1)}: ${(e as Error).message}`);
    }
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Failure(EXIT.usage, `--context is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new Failure(EXIT.usage, "--context must be a JSON object");
  return v as Record<string, unknown>;
}

export const evalCommand = defineCommand({
  meta: { name: "eval", description: "Evaluate a request against the current policies" },
  args: {
    ...targetArgs,
    action: { type: "string", required: true, description: "the action, e.g. read" },
    resource: { type: "string", description: "the resource, e.g. sensitive_data" },
    tags: { type: "string", description: "comma-separated request tags" },
    context: {
      type: "string",
      description: "context: inline JSON or @file.json",
      valueHint: "json",
    },
  },
  async run({ args }) {
    const io = defaultIo();
    const d = await (await client(args)).evaluate({
      action: args.action,
      ...(args.resource ? { resource: args.resource } : {}),
      ...(args.tags ? { tags: args.tags.split(",").map((t) => t.trim()) } : {}),
      context: await contextOf(args.context),
    });
    emit(io, args.json, d, () =>
      fields({
        decision: d.decision,
        reason: d.reason,
        approver: d.approver,
        conditions: d.conditions,
        matched:
          d.matched.map((m) => `${m.policy}/${m.rule} (${m.effect})`).join(", ") || undefined,
        decisionId: d.decisionId,
      }),
    );
    if (d.decision === "deny" || d.decision === "require_approval") process.exitCode = EXIT.failed;
  },
});
