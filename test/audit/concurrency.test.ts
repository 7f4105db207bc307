// Several appender processes against one Redis chain: one chain, no fork, gap or duplicate, every
// acknowledged event in it, also when an appender (possibly the leader) is killed with SIGKILL.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { repoRoot } from "../support/vectors";
import { seedOf, webcryptoSigner } from "./support/crypto";
import { serviceOver } from "./support/harness";

const redis = connectRedis();
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  redis.disconnect();
});

interface Child {
  proc: ChildProcess;
  acks: Map<number, string>;
  errors: string[];
  done: Promise<number | null>;
  onAck?: () => void;
}

function startAppender(prefix: string, name: string, count: number, concurrency: number): Child {
  // Own process group, so SIGKILL reaches npx, tsx and the node process alike.
  const proc = spawn("npx", ["tsx", join(repoRoot, "test/audit/support/appender.ts")], {
    cwd: repoRoot,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      AUDIT_PREFIX: prefix,
      AUDIT_NAME: name,
      AUDIT_COUNT: String(count),
      AUDIT_CONCURRENCY: String(concurrency),
    },
  });
  const child: Child = {
    proc,
    acks: new Map(),
    errors: [],
    done: new Promise((resolve) => proc.on("exit", (code) => resolve(code))),
  };
  let buf = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (d: string) => {
    buf += d;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^ACK (\d+) (\S+)$/.exec(line);
      if (m) {
        child.acks.set(Number(m[1]), m[2]!);
        child.onAck?.();
      } else if (line.startsWith("ERR")) child.errors.push(line);
      nl = buf.indexOf("\n");
    }
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => {
    // npx's own configuration warnings are not the appender's.
    const lines = d.split("\n").filter((l) => l.trim() && !l.startsWith("npm warn"));
    child.errors.push(...lines);
  });
  return child;
}

async function checkChain(prefix: string, acked: Map<number, string>, expectSize?: number) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = await RedisAuditLog.open({ redis, keyPrefix: prefix, signer });
  try {
    const head = await log.head();
    if (expectSize !== undefined) expect(head.size).toBe(expectSize);
    const service = serviceOver(log, signer).service;
    // Every acknowledged event is in the chain, at its index, with its id.
    const stored = await log.read(0, head.size);
    const ids = new Set<string>();
    stored.forEach((r, i) => {
      expect(r, `index ${i}`).toBeDefined();
      const e = JSON.parse(r!.json) as { index: number; eventId: string };
      expect(e.index).toBe(i);
      ids.add(e.eventId);
    });
    expect(ids.size).toBe(head.size); // no duplicates
    for (const [index, id] of acked)
      expect(JSON.parse(stored[index]!.json).eventId, `ack ${index}`).toBe(id);
    expect(await service.verify()).toEqual({ valid: true, checked: head.size });
    const cp = await service.checkpoint();
    expect(cp.treeSize).toBe(head.size);
    return head.size;
  } finally {
    await log.close();
  }
}

describe("audit: many appender processes on one Redis chain", () => {
  it("4 processes × 5,000 appends → 20,000 events, indexes 0..19999, chain verifies", async () => {
    const prefix = testPrefix("audit-procs");
    prefixes.push(prefix);
    const children = [0, 1, 2, 3].map((i) => startAppender(prefix, `p${i}`, 5000, 64));
    const codes = await Promise.all(children.map((c) => c.done));
    for (const c of children) expect(c.errors).toEqual([]);
    expect(codes).toEqual([0, 0, 0, 0]);
    const acked = new Map<number, string>();
    for (const c of children) {
      expect(c.acks.size).toBe(5000);
      for (const [i, id] of c.acks) {
        expect(acked.has(i), `index ${i} acknowledged twice`).toBe(false);
        acked.set(i, id);
      }
    }
    expect([...acked.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20000 }, (_, i) => i),
    );
    await checkChain(prefix, acked, 20000);
  }, 240_000);

  it("kill -9 of one appender mid-run loses nothing it had acknowledged", async () => {
    const prefix = testPrefix("audit-kill");
    prefixes.push(prefix);
    const children = [0, 1, 2].map((i) => startAppender(prefix, `k${i}`, 3000, 32));
    const victim = children[0]!;
    await new Promise<void>((resolve) => {
      victim.onAck = () => {
        if (victim.acks.size >= 700) resolve();
      };
    });
    process.kill(-victim.proc.pid!, "SIGKILL");
    const code = await victim.done;
    expect(code).toBeNull(); // killed, not exited
    const others = await Promise.all(children.slice(1).map((c) => c.done));
    expect(others).toEqual([0, 0]);
    for (const c of children.slice(1)) {
      expect(c.errors).toEqual([]);
      expect(c.acks.size).toBe(3000);
    }
    const acked = new Map<number, string>();
    for (const c of children) for (const [i, id] of c.acks) acked.set(i, id);
    expect(victim.acks.size).toBeGreaterThanOrEqual(700);
    expect(victim.acks.size).toBeLessThan(3000);
    const size = await checkChain(prefix, acked);
    // The victim may have stored a batch it never got to acknowledge; never fewer than acked.
    expect(size).toBeGreaterThanOrEqual(acked.size);
    expect(size).toBeLessThanOrEqual(acked.size + 32);
  }, 240_000);
});
