// The tunnel data plane's contract (worker/egress/relay.ts, docs/sandbox.md "Egress"), run
// against both relays: splice (the native addon) and js (Node streams). A JobProxy on 127.0.0.2
// with one `cidr` rule per test server on 127.0.0.1; everything stays on loopback.
import { createHash, randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { egressSettings } from "../../shared/jobs/egress";
import { JobProxy } from "../../worker/egress/proxy";
import {
  ByteBudget,
  defaultRelayKind,
  type RelayKind,
  relayProblem,
} from "../../worker/egress/relay";
import { until as untilAsync } from "../support/until";

const PROXY_HOST = "127.0.0.2";
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const until = (f: () => boolean) => untilAsync(f.toString(), async () => f(), 20_000);
const fds = () => readdirSync("/proc/self/fd").length;
const threads = () => readdirSync("/proc/self/task").length;

const open: { proxy?: JobProxy; servers: Server[]; socks: Socket[] } = { servers: [], socks: [] };
afterEach(async () => {
  for (const s of open.socks) s.destroy();
  await open.proxy?.close();
  for (const s of open.servers) s.close();
  open.servers = [];
  open.socks = [];
  open.proxy = undefined;
});

async function serve(handler: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    handler(s);
  });
  open.servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

async function proxyFor(
  relay: RelayKind,
  ports: number[],
  maxBytes = 1024 * MiB,
): Promise<{ proxy: JobProxy; port: number }> {
  const proxy = new JobProxy({
    jobId: "job-relay",
    rules: [{ cidr: "127.0.0.1/32", ports, protocol: "tcp" }],
    settings: egressSettings([`127.0.0.1/32:${ports.join(",")}`], []),
    limits: { connectionsPerSecond: 10_000, maxBytes, maxConnections: 100_000 },
    hostAddresses: [PROXY_HOST],
    resolve: async () => [],
    relay,
  });
  open.proxy = proxy;
  return { proxy, port: await proxy.listen(PROXY_HOST) };
}

/** CONNECT to 127.0.0.1:target, `early` written in the same write as the request. */
function tunnel(proxyPort: number, target: number, early = Buffer.alloc(0)): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port: proxyPort, host: PROXY_HOST, allowHalfOpen: true });
    open.socks.push(sock);
    sock.once("error", reject);
    const req = `CONNECT 127.0.0.1:${target} HTTP/1.1\r\nHost: 127.0.0.1:${target}\r\n\r\n`;
    sock.write(Buffer.concat([Buffer.from(req), early]));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.off("data", onData);
      if (!buf.subarray(0, end).toString().startsWith("HTTP/1.1 200"))
        return reject(new Error(buf.toString()));
      const rest = buf.subarray(end + 4);
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    sock.on("data", onData);
  });
}

/** All a socket reads until its peer ends it (or it closes). */
const drain = (s: Socket): Promise<Buffer> =>
  new Promise((resolve) => {
    const got: Buffer[] = [];
    const done = () => resolve(Buffer.concat(got));
    s.on("data", (d: Buffer) => got.push(d));
    s.once("end", done);
    s.once("close", done);
    s.on("error", () => {});
  });

it("the splice relay is built on this machine (npm ci builds worker/egress/native)", () => {
  // Without it every tunnel takes the js relay: correct, but at about half the throughput.
  expect(defaultRelayKind).toBe("splice");
});

it("a worker asked for the splice relay where it is not built refuses to start; auto and js do not", () => {
  expect(relayProblem("splice", "js")).toMatch(
    /relay is splice but the addon is not built.*node-gyp/,
  );
  expect(relayProblem("splice", "splice")).toBeNull();
  expect(relayProblem("auto", "js")).toBeNull();
  expect(relayProblem("js", "js")).toBeNull();
});

it("the byte budget counts atomically and says when a spend goes over", () => {
  const b = new ByteBudget(10);
  expect(b.spend(4)).toBe(true);
  expect(b.spend(6)).toBe(true);
  expect(b.spent).toBe(true);
  expect(b.spend(1)).toBe(false);
  expect(b.used).toBe(11);
});

describe.each(["splice", "js"] as const)("egress relay: %s", (relay) => {
  it("carries bytes sent with the CONNECT request and right after it, unaltered, both ways", async () => {
    // Bytes that reach the proxy before the relay starts (in the request's own segment, and
    // before the 200 is read) are in Node's buffers when splice takes over: none may be lost.
    const early = randomBytes(3000);
    const later = randomBytes(2 * MiB + 5);
    const reply = randomBytes(5 * MiB + 3);
    const received: Buffer[] = [];
    const target = await serve((s) => {
      s.on("data", (d: Buffer) => received.push(d));
      s.on("end", () => s.end(reply));
    });
    const { proxy, port } = await proxyFor(relay, [target]);
    const sock = await tunnel(port, target, early);
    const got = drain(sock);
    sock.end(later);
    expect(sha(await got)).toBe(sha(reply));
    expect(sha(Buffer.concat(received))).toBe(sha(Buffer.concat([early, later])));
    await until(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({
      allowed: true,
      bytesUp: early.length + later.length,
      bytesDown: reply.length,
    });
    expect(proxy.log[0]!.reason).toBeUndefined();
  });

  it("keeps the job's direction open after the destination ends its own: later bytes still arrive", async () => {
    // The destination half-closes first (greeting, then FIN); a relay that tears the tunnel down
    // on the first end would drop what the job sends afterwards.
    const later = randomBytes(MiB + 7);
    const received: Buffer[] = [];
    let serverDone: () => void = () => {};
    const done = new Promise<void>((r) => {
      serverDone = r;
    });
    const target = await serve((s) => {
      s.on("data", (d: Buffer) => received.push(d));
      s.on("end", () => {
        s.destroy();
        serverDone();
      });
      s.once("data", () => s.end("greeting"));
    });
    const { proxy, port } = await proxyFor(relay, [target]);
    const sock = await tunnel(port, target);
    const got = drain(sock);
    sock.write("first");
    expect((await got).toString()).toBe("greeting");
    expect(sock.writable).toBe(true);
    sock.end(later);
    await done;
    expect(sha(Buffer.concat(received))).toBe(sha(Buffer.concat([Buffer.from("first"), later])));
    await until(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ allowed: true, bytesUp: 5 + later.length, bytesDown: 8 });
  });

  it("cuts a tunnel at the job's byte limit, forwards no byte past it, and refuses the next", async () => {
    const limit = 256 * 1024;
    const target = await serve((s) => {
      s.write(randomBytes(4 * MiB));
    });
    const { proxy, port } = await proxyFor(relay, [target], limit);
    const got = await drain(await tunnel(port, target));
    expect(got.length).toBeLessThanOrEqual(limit);
    await until(() => proxy.log.length === 1);
    expect(proxy.log[0]).toMatchObject({ allowed: true, reason: "byte limit reached" });
    expect(proxy.log[0]!.bytesDown).toBe(got.length);
    await expect(tunnel(port, target)).rejects.toThrow(/403/);
    expect(proxy.log[1]).toMatchObject({ allowed: false, reason: "byte limit reached" });
  });

  it("a stream of exactly the limit that then ends is not cut", async () => {
    const limit = 300 * 1024;
    const body = randomBytes(limit);
    const target = await serve((s) => s.end(body));
    const { proxy, port } = await proxyFor(relay, [target], limit);
    const sock = await tunnel(port, target);
    const got = drain(sock);
    sock.end();
    expect(sha(await got)).toBe(sha(body));
    await until(() => proxy.log.length === 1);
    expect(proxy.log[0]!.reason).toBeUndefined();
    expect(proxy.log[0]!.bytesDown).toBe(limit);
  });

  it("shares one budget among concurrent tunnels: together they forward at most the limit", async () => {
    const limit = 3 * MiB;
    // The servers send once the job does, so that every tunnel is open before the budget runs
    // out (a spent budget refuses new tunnels: tested above).
    const target = await serve((s) => {
      s.on("data", () => {});
      s.once("data", () => s.write(randomBytes(2 * MiB)));
    });
    const { proxy, port } = await proxyFor(relay, [target], limit);
    const socks = await Promise.all([1, 2, 3, 4, 5, 6].map(() => tunnel(port, target)));
    // Uploads too, so both directions of every tunnel race for the same budget.
    for (const s of socks) s.write(randomBytes(512 * 1024));
    const got = await Promise.all(socks.map(drain));
    await until(() => proxy.log.length === 6);
    const forwarded = proxy.log.reduce((n, l) => n + l.bytesUp + l.bytesDown, 0);
    expect(forwarded).toBeLessThanOrEqual(limit);
    expect(got.reduce((n, b) => n + b.length, 0)).toBe(
      proxy.log.reduce((n, l) => n + l.bytesDown, 0),
    );
    expect(proxy.log.some((l) => l.reason === "byte limit reached")).toBe(true);
  });

  it("a job that resets its connection mid-transfer ends the tunnel; it is logged with what passed", async () => {
    let serverClosed = false;
    const target = await serve((s) => {
      s.on("close", () => {
        serverClosed = true;
      });
      const chunk = randomBytes(64 * 1024);
      const pump = () => {
        while (s.write(chunk)) {}
        s.once("drain", pump);
      };
      pump();
    });
    const { proxy, port } = await proxyFor(relay, [target]);
    const sock = await tunnel(port, target);
    await new Promise<void>((r) => sock.once("data", () => r()));
    sock.resetAndDestroy();
    await until(() => proxy.log.length === 1 && serverClosed);
    expect(proxy.log[0]!.allowed).toBe(true);
    expect(proxy.log[0]!.bytesDown).toBeGreaterThan(0);
  });

  it("a destination that resets ends the tunnel towards the job", async () => {
    const target = await serve((s) => {
      s.write("hello");
      setTimeout(() => s.resetAndDestroy(), 50);
    });
    const { proxy, port } = await proxyFor(relay, [target]);
    const got = await drain(await tunnel(port, target));
    expect(got.toString()).toBe("hello");
    await until(() => proxy.log.length === 1);
  });

  it("the job's end (proxy closed) cuts open tunnels, logs them, and leaves no descriptor or thread", async () => {
    let arrived = 0;
    const target = await serve((s) => {
      s.on("data", (d: Buffer) => {
        arrived += d.length;
      });
      s.on("end", () => s.end());
    });
    const { proxy, port } = await proxyFor(relay, [target]);
    const baseFds = fds();
    const baseThreads = threads();
    const socks = await Promise.all(Array.from({ length: 20 }, () => tunnel(port, target)));
    for (const s of socks) s.write("x");
    // Every tunnel relaying (its byte through) before the job ends.
    await until(() => arrived === 20);
    const closed = socks.map(drain);
    await proxy.close();
    await Promise.all(closed);
    expect(proxy.log).toHaveLength(20);
    expect(proxy.log.every((l) => l.allowed && l.bytesUp === 1)).toBe(true);
    for (const s of open.socks) s.destroy();
    open.socks = [];
    await until(() => fds() <= baseFds && threads() <= baseThreads);
  });

  it("many short tunnels one after another leave no descriptor behind", async () => {
    const target = await serve((s) => s.end("bye"));
    const { proxy, port } = await proxyFor(relay, [target]);
    const base = fds();
    for (let i = 0; i < 100; i++) {
      const sock = await tunnel(port, target);
      sock.end();
      expect((await drain(sock)).toString()).toBe("bye");
    }
    open.socks = [];
    await until(() => proxy.log.length === 100);
    await until(() => fds() <= base);
  });

  it("the job's end during admission: the connection is refused and logged (job ended), close() does not wait for it", async () => {
    // A name whose resolution never answers: the CONNECT is mid-admission when the job ends.
    const proxy = new JobProxy({
      jobId: "job-relay",
      rules: [{ domain: "slow.test", ports: [443], protocol: "tcp" }],
      settings: egressSettings([], []),
      limits: { connectionsPerSecond: 10_000, maxBytes: MiB, maxConnections: 100 },
      hostAddresses: [PROXY_HOST],
      resolve: () => new Promise<string[]>(() => {}),
      relay,
    });
    open.proxy = proxy;
    const port = await proxy.listen(PROXY_HOST);
    const sock = connect({ port, host: PROXY_HOST });
    open.socks.push(sock);
    sock.on("error", () => {});
    const got = drain(sock);
    sock.write("CONNECT slow.test:443 HTTP/1.1\r\nHost: slow.test:443\r\n\r\n");
    await new Promise((r) => setTimeout(r, 200));
    await proxy.close();
    await got;
    expect(proxy.log).toHaveLength(1);
    expect(proxy.log[0]).toMatchObject({ allowed: false, reason: "job ended", host: "slow.test" });
  });
});

describe("the splice addon refuses misuse without crashing the worker", () => {
  type Done = (r: { end: string; up: number; down: number; error?: string }) => void;
  const addon = createRequire(import.meta.url)(
    "../../worker/egress/native/build/Release/sigil_relay.node",
  ) as { relay: (...args: unknown[]) => () => void };
  const budget = () => new BigInt64Array(new SharedArrayBuffer(8));

  it("bad arguments throw a TypeError-like error naming the argument", () => {
    const ok: Done = () => {};
    expect(() => addon.relay()).toThrow(/relay\(clientFd/);
    expect(() => addon.relay(-1, 5, budget(), 10, ok)).toThrow(/non-negative/);
    expect(() => addon.relay(1.5, 5, budget(), 10, ok)).toThrow(/non-negative/);
    expect(() => addon.relay("3", 5, budget(), 10, ok)).toThrow(/non-negative/);
    expect(() => addon.relay(3, 5, new Float64Array(1), 10, ok)).toThrow(/BigInt64Array/);
    expect(() => addon.relay(3, 5, new BigInt64Array(0), 10, ok)).toThrow(/BigInt64Array/);
    expect(() => addon.relay(3, 5, [0n], 10, ok)).toThrow(/BigInt64Array/);
    expect(() => addon.relay(3, 5, budget(), Number.NaN, ok)).toThrow(/limit/);
    expect(() => addon.relay(3, 5, budget(), -1, ok)).toThrow(/limit/);
    expect(() => addon.relay(3, 5, budget(), 10, "done")).toThrow(/function/);
  });

  it("descriptors that are closed or not sockets end the relay with an error, once", async () => {
    const base = fds();
    const results: Parameters<Done>[0][] = [];
    // A descriptor number far above any open one: poll reports it invalid, splice fails.
    await new Promise<void>((resolve) => {
      addon.relay(900_000, 900_001, budget(), 1024, (r: Parameters<Done>[0]) => {
        results.push(r);
        resolve();
      });
    });
    expect(results).toEqual([{ end: "error", up: 0, down: 0, error: "Bad file descriptor" }]);
    await until(() => fds() <= base);
  });

  it("stop() after the end, and twice, is harmless", async () => {
    let stop: () => void = () => {};
    await new Promise<void>((resolve) => {
      stop = addon.relay(900_000, 900_001, budget(), 1024, () => resolve());
    });
    stop();
    stop();
  });
});
