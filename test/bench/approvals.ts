import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { Sigil } from "../../sdk";
import { toBase64Url } from "../../shared/encoding";
import { newKey } from "../support/targets";
import { startBenchApi } from "./api-process";

const POLICY = `policy resource_governance {
    allow: allocate(resources) if user.resource_quota.remaining >= resources.total
    require: supervisor_approval for high_memory_operations
}`;
const request = (i: number, tags: string[]) => ({
  action: "allocate",
  resource: "resources",
  tags,
  context: { user: { resource_quota: { remaining: 16 } }, resources: { total: 8 }, run: i },
});

const pct = (xs: number[], p: number) =>
  xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export async function bench(): Promise<void> {
  const rounds = Number(process.env.APPROVALS_BENCH_N ?? 300);
  // The webhook receiver: resolves the waiter of each approval id when its `requested` arrives.
  const waiting = new Map<string, () => void>();
  const early = new Set<string>();
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const e = JSON.parse(body) as { type: string; approval: { id: string } };
      if (e.type === "approval.requested") {
        const w = waiting.get(e.approval.id);
        if (w) w();
        else early.add(e.approval.id);
      }
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

  const agentKey = await newKey();
  const bossKey = await newKey();
  const api = await startBenchApi({ SIGIL_APPROVALS_WEBHOOKS: JSON.stringify([hook]) });
  const { base } = api;
  try {
    const adminClient = api.admin;
    for (const [k, subject, groups] of [
      [agentKey, "bench-agent", []],
      [bossKey, "bench-boss", ["supervisor"]],
    ] as const) {
      await adminClient.keys.create({
        role: "agent",
        subject,
        publicKey: toBase64Url(k.publicKey),
        groups: [...groups],
      });
    }
    await adminClient.policies.put("p", POLICY);
    const client = (k: typeof agentKey) =>
      new Sigil({ baseUrl: base, keyId: k.kid, signer: k.signer, retries: 0 });
    const agent = client(agentKey);
    const boss = client(bossKey);

    const roundTrip = async (i: number) => {
      const req = request(i, ["high_memory_operations"]);
      const d = await agent.evaluate(req);
      const id = d.approvalId;
      if (d.decision !== "require_approval" || !id) throw new Error(`unexpected ${d.decision}`);
      if (!early.delete(id)) await new Promise<void>((ok) => waiting.set(id, ok));
      waiting.delete(id);
      await boss.approvals.decide(id, { decision: "approve", reason: "bench" });
      const r = await agent.evaluate({ ...req, approvalId: id });
      if (r.decision !== "allow") throw new Error(`redemption: ${r.decision} ${r.reason}`);
    };
    const plain = async (i: number) => {
      const r = await agent.evaluate(request(i, []));
      if (r.decision !== "allow") throw new Error(`plain: ${r.decision}`);
    };

    for (let i = 0; i < 20; i++) {
      await roundTrip(-1 - i);
      await plain(-1 - i);
    }
    const trips: number[] = [];
    const plains: number[] = [];
    // Interleaved, so both see the same machine.
    for (let i = 0; i < rounds; i++) {
      let t0 = performance.now();
      await roundTrip(i);
      trips.push(performance.now() - t0);
      t0 = performance.now();
      await plain(i);
      plains.push(performance.now() - t0);
    }
    trips.sort((a, b) => a - b);
    plains.sort((a, b) => a - b);
    console.log("| path | rounds | p50 ms | p99 ms |");
    console.log("|---|---|---|---|");
    console.log(
      `| plain evaluation (anchor) | ${rounds} | ${pct(plains, 50).toFixed(2)} | ${pct(plains, 99).toFixed(2)} |`,
    );
    console.log(
      `| approval round trip: evaluate → webhook delivered → decision → redemption | ${rounds} | ${pct(trips, 50).toFixed(2)} | ${pct(trips, 99).toFixed(2)} |`,
    );
    console.log(
      "(one at a time over loopback; client, receiver, API and Redis share the machine; four signed requests and one signed webhook per round trip)",
    );
  } finally {
    await api.stop();
    receiver.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bench();
  process.exit(0);
}
