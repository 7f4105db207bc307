// Egress proxy cost (docs/benchmarks.md, "Egress proxy"): connection set-up and bulk throughput
// through a job's proxy beside a direct connection from the same client to the same server, same
// run. Goal: set-up overhead p50 <= 2 ms, throughput >= 0.8 x direct. Name resolution is excluded
// (cidr rules): it is the upstream resolver's cost, not the proxy's.
// The tunnels' data plane is measured both ways: the splice relay (the default) and the js relay.
// Run: npx tsx test/bench/egress.ts (or `npm run bench -- egress`); EGRESS_MICRO_ONLY=1 for the
// micro row alone (for profiling the proxy: node --cpu-prof --import tsx test/bench/egress.ts).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import Docker from "dockerode";
import { configSchema } from "../../shared/config/schema";
import { startJobEgress } from "../../worker/egress";
import { JobNetworks } from "../../worker/egress/network";
import type { RelayKind } from "../../worker/egress/relay";
import { runWithEgress } from "../../worker/jobs/sandbox-driver";
import { Sandbox } from "../../worker/sandbox";
import { NETNS_PORTS, startNetnsServers } from "../sandbox/egress-netns";

const PROXY_HOST = "127.0.0.2";
const MiB = 1024 * 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function egressNetwork(allowCidr: string, relay: RelayKind) {
  return configSchema.parse({
    network: {
      egress: true,
      relay,
      resolvers: ["127.0.0.1:53"],
      allow_cidrs: [allowCidr],
      connections_per_second: 10_000,
      max_connections: 100_000,
      max_bytes: 1024 * MiB, // the most a job may have: above what one bench job moves
    },
  }).network;
}

/**
 * The micro row: client and server in a child process (egress-peer.mjs), the proxy in this one,
 * so the proxy has an event loop of its own as in the worker. Loopback, no containers.
 */
export async function benchMicro(relay: RelayKind): Promise<void> {
  const peer = spawn(
    process.execPath,
    [fileURLToPath(new URL("./egress-peer.mjs", import.meta.url))],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let cpuPerGiB = 0;
  let r: Record<"setupDirect" | "setupProxied" | "bulkDirect" | "bulkProxied", number[]>;
  try {
    const lines = createInterface({ input: peer.stdout });
    const next = () => new Promise<string>((ok) => lines.once("line", ok));
    const port = Number((await next()).split(" ")[1]);
    const egress = await startJobEgress({
      jobId: "bench",
      rules: [{ cidr: "127.0.0.1/32", ports: [port], protocol: "tcp" }],
      network: egressNetwork(`127.0.0.1/32:${port}`, relay),
      bindHost: PROXY_HOST,
      hostAddresses: [PROXY_HOST],
    });
    const cpu0 = process.cpuUsage();
    try {
      const result = next();
      peer.stdin.write(`go ${PROXY_HOST} ${egress.proxyPort}\n`);
      r = JSON.parse(await result);
    } finally {
      const cpu = process.cpuUsage(cpu0);
      const sum = await egress.stop();
      // The proxy's own CPU (this process does nothing else meanwhile) per GiB it forwarded:
      // a cost that the load on a shared machine does not change much, unlike the rates.
      cpuPerGiB = (cpu.user + cpu.system) / 1000 / ((sum.bytesUp + sum.bytesDown) / 1024 / MiB);
    }
  } finally {
    peer.kill();
  }
  const d50 = median(r.setupDirect);
  const x50 = median(r.setupProxied);
  const bd = median(r.bulkDirect);
  const bp = median(r.bulkProxied);
  const mibs = (xs: number[]) => xs.map((x) => (x / MiB).toFixed(0)).join("/");
  console.log(
    `micro, ${relay} relay (loopback, client+server in a child, proxy here): set-up p50 direct ${d50.toFixed(3)} ms, through the proxy ${x50.toFixed(3)} ms, overhead ${(x50 - d50).toFixed(3)} ms (goal <= 2 ms)`,
  );
  console.log(
    `micro, ${relay} relay: throughput, median of ${r.bulkDirect.length} interleaved: direct ${(bd / MiB).toFixed(0)} MiB/s (${mibs(r.bulkDirect)}), through the proxy ${(bp / MiB).toFixed(0)} MiB/s (${mibs(r.bulkProxied)}), ratio ${(bp / bd).toFixed(2)} (goal >= 0.8); proxy CPU (user+sys) ${cpuPerGiB.toFixed(0)} ms per GiB forwarded`,
  );
}

const JOB_SETUPS = 100;
const JOB_STREAM = 64 * MiB;
const JOB_STREAMS = 3;
const ROUNDS = 5;

// The client, the same code on both paths: python (the image's socket module) in a job
// container. With HTTPS_PROXY set it opens a CONNECT tunnel, reading the proxy's answer as a
// buffered client does (bytes after it are the server's); without, it connects directly.
// Set-up: connect (+ CONNECT) until the server's first bytes; throughput: a stream.
const JOB_CODE = `
import os, socket, time
P = os.environ.get("HTTPS_PROXY")
if P: ph, pp = P.split("//")[1].split(":"); pp = int(pp)
def dial(target):
    if not P:
        h, p = target.rsplit(":", 1)
        return socket.create_connection((h, int(p))), b""
    s = socket.create_connection((ph, pp))
    s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        d = s.recv(4096)
        if not d: raise OSError("proxy closed")
        head += d
    status, rest = head.split(b"\\r\\n\\r\\n", 1)
    if not status.startswith(b"HTTP/1.1 200"): raise OSError(status)
    return s, rest
ts = []
for _ in range(${JOB_SETUPS}):
    t0 = time.perf_counter(); s, first = dial(os.environ["TCP"])
    if not first: s.recv(64)
    ts.append(time.perf_counter() - t0); s.close()
ts.sort(); print("setup_p50_ms", ts[len(ts) // 2] * 1000)
best = 0
for _ in range(${JOB_STREAMS}):
    s, n = dial(os.environ["STREAM"]); n = len(n); s.sendall(b"${JOB_STREAM}\\n"); t0 = time.perf_counter()
    while True:
        d = s.recv(1 << 20)
        if not d: break
        n += len(d)
    best = max(best, n / (time.perf_counter() - t0)); s.close()
print("bulk_mib_s", best / 1048576)
`;

/**
 * The path a user sees: the same python client in a job container of the same tier and limits,
 * reaching servers in a network namespace (a) through the job's proxy from its internal network
 * and (b) directly from Docker's default bridge (routed and masqueraded by the host kernel: the
 * comparison path, not a product path). Through the proxy twice: the splice relay (the product's
 * default) and the js relay (Node streams: the fallback, for comparison). Rounds rotate the
 * order; medians of the rounds.
 */
export async function benchJobNetwork(): Promise<void> {
  const srv = await startNetnsServers();
  const docker = new Docker();
  const sandbox = new Sandbox({ workerId: `bench-egress-${process.pid}`, docker });
  const ports = [NETNS_PORTS.tcp, NETNS_PORTS.stream];
  try {
    const allow = `${srv.serverIp}/32:${ports.join(",")}`;
    const network = egressNetwork(allow, "splice");
    const networksOf = (relay: RelayKind) =>
      new JobNetworks({
        docker,
        workerId: sandbox.config.workerId,
        runId: sandbox.runId,
        network: egressNetwork(allow, relay),
      });
    const networks = { splice: networksOf("splice"), js: networksOf("js") };
    type Path = "direct" | RelayKind;
    for (const tier of ["docker", "gvisor"] as const) {
      const runOne = async (path: Path, round: number) => {
        const spec = {
          jobId: `bench-egress-${tier}-${path}-${round}-${process.pid}`,
          tier,
          image: "sigil/python:1",
          code: JOB_CODE,
          language: "python" as const,
          env: {
            TCP: `${srv.serverIp}:${NETNS_PORTS.tcp}`,
            STREAM: `${srv.serverIp}:${NETNS_PORTS.stream}`,
          },
          timeoutMs: 120_000,
          limits: { memoryMb: 256, cpus: 1, pids: 64, outputBytes: 65536 },
        };
        const gvisorRuntime = network.gvisor_network_runtime;
        const run =
          path === "direct"
            ? await sandbox.runJob(spec, {
                network: { network: "bridge", env: [], binds: [], gvisorRuntime },
              })
            : await runWithEgress(sandbox, networks[path], gvisorRuntime, spec, {
                egress: [{ cidr: `${srv.serverIp}/32`, ports, protocol: "tcp" }],
              });
        if (run.status !== "succeeded")
          throw new Error(`${tier} job (${path}): ${run.status} ${run.stderr}`);
        const num = (k: string) =>
          Number(new RegExp(`^${k} ([0-9.]+)$`, "m").exec(run.stdout)?.[1]);
        return { setup: num("setup_p50_ms"), bulk: num("bulk_mib_s") };
      };
      const results: Record<Path, { setup: number; bulk: number }[]> = {
        direct: [],
        splice: [],
        js: [],
      };
      const paths: Path[] = ["direct", "splice", "js"];
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = 0; i < paths.length; i++) {
          const p = paths[(round + i) % paths.length]!;
          results[p].push(await runOne(p, round));
        }
      }
      const { direct, splice: proxied, js } = results;
      const s = (xs: { setup: number }[]) => median(xs.map((x) => x.setup));
      const b = (xs: { bulk: number }[]) => median(xs.map((x) => x.bulk));
      const each = (xs: { bulk: number }[]) => xs.map((x) => x.bulk.toFixed(0)).join("/");
      console.log(
        `job network (${tier}), median of ${ROUNDS} alternated rounds: set-up p50 direct ${s(direct).toFixed(3)} ms, through the proxy ${s(proxied).toFixed(3)} ms, overhead ${(s(proxied) - s(direct)).toFixed(3)} ms; stream (best of ${JOB_STREAMS} x ${JOB_STREAM / MiB} MiB per round) direct ${b(direct).toFixed(0)} MiB/s (${each(direct)}), through the proxy ${b(proxied).toFixed(0)} MiB/s (${each(proxied)}), ratio ${(b(proxied) / b(direct)).toFixed(2)}; js relay ${b(js).toFixed(0)} MiB/s (${each(js)}), ratio ${(b(js) / b(direct)).toFixed(2)}, set-up overhead ${(s(js) - s(direct)).toFixed(3)} ms`,
      );
    }
  } finally {
    await sandbox.shutdown({ graceMs: 0 });
    srv.close();
  }
}

export async function bench(): Promise<void> {
  await benchMicro("splice");
  await benchMicro("js");
  if (process.env.EGRESS_MICRO_ONLY !== "1") await benchJobNetwork();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bench();
}
