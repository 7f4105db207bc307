// sigil approvals ls|show|approve|deny|watch (docs/cli.md, docs/governance.md "Approvals"): the
// approver's side of RequireApproval. Approvers see their groups' approvals, admins and auditors
// all; an answer is signed by the approver's key and audited, and answered once (409 after).
import { defineCommand } from "citty";
import type { Approval, ApprovalStatus } from "../../sdk";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, intFlag, table } from "../output";
import { watch, watchArgs } from "../watch";

const STATUSES: readonly ApprovalStatus[] = [
  "pending",
  "approved",
  "denied",
  "expired",
  "redeemed",
];

const idArg = { id: { type: "positional", required: true, description: "approval id" } } as const;

const what = (a: Approval) =>
  `${a.request.action}(${a.request.resource ?? ""})${a.request.tags.length ? ` [${a.request.tags.join(",")}]` : ""}`;

/** One line per approval change (`watch`). */
const oneLine = (data: unknown) => {
  const a = data as Approval;
  return `${a.id}  ${a.status}  ${a.request.subject}  ${what(a)}  approver ${a.approver}`;
};

function human(a: Approval): string[] {
  return fields({
    id: a.id,
    status: a.status,
    approver: a.approver,
    requester: `${a.request.subject} (${a.request.kid})`,
    request: what(a),
    "context sha256": a.request.contextSha256,
    "policy set": a.request.policySetVersion,
    "policy reason": a.policyReason ?? undefined,
    created: a.createdAt,
    expires: a.expiresAt,
    decision: a.decision
      ? `${a.decision.decision} by ${a.decision.by.subject} at ${a.decision.at}${a.decision.reason ? `: ${a.decision.reason}` : ""}`
      : undefined,
  });
}

const ls = defineCommand({
  meta: {
    name: "ls",
    description: "Approvals newest first (approvers: their groups'; admins all)",
  },
  args: {
    ...targetArgs,
    status: { type: "string", description: STATUSES.join("|") },
    limit: { type: "string", description: "at most this many (1-1000, default 100)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const status = args.status as ApprovalStatus | undefined;
    if (status !== undefined && !STATUSES.includes(status))
      throw new Failure(EXIT.usage, `--status must be one of ${STATUSES.join(", ")}`);
    const limit = intFlag("limit", args.limit, 1, 1000);
    const sigil = await client(args);
    const page = await sigil.approvals.list({
      ...(status ? { status } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    emit(io, args.json, page, () =>
      table(
        ["id", "status", "requester", "request", "approver", "expires"],
        page.approvals.map((a) => [
          a.id,
          a.status,
          a.request.subject,
          what(a),
          a.approver,
          a.expiresAt,
        ]),
      ),
    );
  },
});

const show = defineCommand({
  meta: {
    name: "show",
    description: "One approval (its requester, its approvers, admins, auditors)",
  },
  args: { ...targetArgs, ...idArg },
  async run({ args }) {
    const io = defaultIo();
    const a = await (await client(args)).approvals.get(args.id);
    emit(io, args.json, a, () => human(a));
  },
});

const answer = (decision: "approve" | "deny") =>
  defineCommand({
    meta: {
      name: decision,
      description: `${decision === "approve" ? "Approve" : "Deny"} an approval (a key of its approver group, never the requester's subject)`,
    },
    args: {
      ...targetArgs,
      ...idArg,
      reason: { type: "string", description: "why (audited)" },
    },
    async run({ args }) {
      const io = defaultIo();
      const a = await (await client(args)).approvals.decide(args.id, {
        decision,
        ...(args.reason !== undefined ? { reason: args.reason } : {}),
      });
      emit(io, args.json, a, () => `${a.id} ${a.status}`);
    },
  });

const watchCmd = defineCommand({
  meta: {
    name: "watch",
    description: "Print every approval change the key may see, as it happens",
  },
  args: { ...targetArgs, ...watchArgs },
  async run({ args }) {
    const sigil = await client(args);
    await watch(defaultIo(), args, (call) => sigil.approvals.events(call), oneLine);
  },
});

export const approvals = defineCommand({
  meta: { name: "approvals", description: "Answer and follow RequireApproval requests" },
  subCommands: { ls, show, approve: answer("approve"), deny: answer("deny"), watch: watchCmd },
});
