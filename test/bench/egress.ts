// Egress proxy cost (docs/sandbox.md, "Egress"): connection set-up (TCP connect + CONNECT + first
// byte back) and bulk throughput through the job proxy, beside a direct connection to the same
// local TCP server, same run. Goal: set-up overhead p50 <= 2 ms, throughput >= 0.8 x direct.
// Name resolution is excluded (a cidr rule): it is the upstream resolver's cost, not the proxy's.
// Run: npx tsx test/bench/egress.ts
import { connect, createServer, type Socket } from "node:net";
import { pathToFileURL } from "node:url";
import Docker from "dockerode";
import { configSchema } from "../../shared/config/schema";
import { startJobEgress } from "../../worker/egress";
import { JobNetworks } from "../../worker/egress/network";
import { runWithEgress } from "../../worker/jobs/sandbox-driver";
import { Sandbox } from "../../worker/sandbox";
import { NETNS_PORTS, startNetnsServers } from "../sandbox/egress-netns";

const SETUPS = 300;
const BULK_BYTES = 256 * 1024 * 1024;
const PROXY_HOST = "127.0.0.2";

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function open(port: number, host: string, connectTarget?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    s.once("error", reject);
    s.once("connect", () => {
      if (!connectTarget) return resolve(s);
      s.write(`CONNECT ${connectTarget} HTTP/1.1\r\nHost: ${connectTarget}\r\n\r\n`);
      let buf = "";
      const onData = (d: Buffer) => {
        buf += d.toString("latin1");
        if (!buf.includes("\r\n\r\n")) return;
        s.off("data", onData);
        if (!buf.startsWith("HTTP/1.1 200")) reject(new Error(buf.split("\r\n")[0]));
        else resolve(s);
      };
      s.on("data", onData);
    });
  });
}

/** Connect, send one byte, get the echo: the set-up cost an agent's request pays. */
async function setup(port: number, host: string, target?: string): Promise<number> {
  const t0 = performance.now();
  const s = await open(port, host, target);
  await new Promise<void>((r) => {
    s.once("data", () => r());
    s.write("x");
  });
  const dt = performance.now() - t0;
  s.destroy();
  return dt;
}

/** Bytes per second the server streams to the client until BULK_BYTES have arrived. */
async function bulk(port: number, host: string, target?: string): Promise<number> {
  const s = await open(port, host, target);
  const t0 = performance.now();
  let got = 0;
  await new Promise<void>((r) => {
    s.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= BULK_BYTES) r();
    });
    s.write("b");
  });
  const dt = performance.now() - t0;
  s.destroy();
  return (got / dt) * 1000;
}

export async function bench(): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  const server = createServer((s) => {
    s.once("data", (d: Buffer) => {
      if (d[0] !== 0x62) {
        s.write(d);
        s.on("data", () => {});
        return;
      }
      let sent = 0;
      const pump = () => {
        while (sent < BULK_BYTES + chunk.length) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once("drain", pump);
        }
      };
      pump();
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const network = configSchema.parse({
    network: {
      egress: true,
      resolvers: ["127.0.0.1:53"],
      allow_cidrs: [`127.0.0.1/32:${port}`],
      connections_per_second: 10_000,
      max_connections: 100_000,
      max_bytes: 1024 * 1024 * 1024,
    },
  }).network;
  const egress = await startJobEgress({
    jobId: "bench",
    rules: [{ cidr: "127.0.0.1/32", ports: [port], protocol: "tcp" }],
    network,
    bindHost: PROXY_HOST,
    hostAddresses: [PROXY_HOST],
  });
  const target = `127.0.0.1:${port}`;
  const direct: number[] = [];
  const proxied: number[] = [];
  // Interleaved so load on the shared machine hits both alike.
  for (let i = 0; i < SETUPS; i++) {
    direct.push(await setup(port, "127.0.0.1"));
    proxied.push(await setup(egress.proxyPort, PROXY_HOST, target));
  }
  const bulkDirect: number[] = [];
  const bulkProxied: number[] = [];
  for (let i = 0; i < 3; i++) {
    bulkDirect.push(await bulk(port, "127.0.0.1"));
    bulkProxied.push(await bulk(egress.proxyPort, PROXY_HOST, target));
  }
  await egress.stop();
  server.close();
  const d50 = p50(direct);
  const x50 = p50(proxied);
  const bd = Math.max(...bulkDirect);
  const bp = Math.max(...bulkProxied);
  console.log(`set-up p50: direct ${d50.toFixed(3)} ms, through the proxy ${x50.toFixed(3)} ms`);
  console.log(`set-up overhead p50: ${(x50 - d50).toFixed(3)} ms (goal <= 2 ms)`);
  console.log(
    `throughput (best of 3, ${BULK_BYTES / 1024 / 1024} MiB): direct ${(bd / 1024 / 1024).toFixed(0)} MiB/s, proxied ${(bp / 1024 / 1024).toFixed(0)} MiB/s, ratio ${(bp / bd).toFixed(2)} (goal >= 0.8)`,
  );
  await benchJobNetwork();
}

const JOB_SETUPS = 200;
const JOB_BULK = 128 * 1024 * 1024;

// In the job: python (the image's socket module), timing set-up (connect + CONNECT + the server's
// first bytes) and a stream, through the proxy; the same measures from the host, directly.
const JOB_CODE = `
import os, socket, time
ph, pp = os.environ["HTTPS_PROXY"].split("//")[1].split(":"); pp = int(pp)
def tunnel(target):
    s = socket.create_connection((ph, pp))
    s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += s.recv(1)
    return s
ts = []
for _ in range(${JOB_SETUPS}):
    t0 = time.perf_counter(); s = tunnel(os.environ["TCP"]); s.recv(64); ts.append(time.perf_counter() - t0); s.close()
ts.sort(); print("setup_p50_ms", ts[len(ts) // 2] * 1000)
best = 0
for _ in range(3):
    s = tunnel(os.environ["STREAM"]); s.sendall(b"${JOB_BULK}\\n"); n = 0; t0 = time.perf_counter()
    while True:
        d = s.recv(1 << 20)
        if not d: break
        n += len(d)
    best = max(best, n / (time.perf_counter() - t0)); s.close()
print("bulk_mib_s", best / 1048576)
`;

/** Direct from the host to the namespace's server: connect + first bytes, and a stream. */
async function hostDirect(ip: string): Promise<{ setup: number; bulk: number }> {
  const ts: number[] = [];
  for (let i = 0; i < JOB_SETUPS; i++) {
    const t0 = performance.now();
    const s = await open(NETNS_PORTS.tcp, ip);
    await new Promise((r) => s.once("data", r));
    ts.push(performance.now() - t0);
    s.destroy();
  }
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const s = await open(NETNS_PORTS.stream, ip);
    const t0 = performance.now();
    let n = 0;
    s.on("data", (d: Buffer) => {
      n += d.length;
    });
    s.write(`${JOB_BULK}\n`);
    await new Promise((r) => s.once("close", r));
    best = Math.max(best, (n / (performance.now() - t0)) * 1000);
  }
  return { setup: p50(ts), bulk: best / 1024 / 1024 };
}

/**
 * The real path: a job container on its own internal network, through its proxy on the gateway,
 * to servers in a network namespace; beside the host reaching the same servers directly.
 */
export async function benchJobNetwork(): Promise<void> {
  const srv = await startNetnsServers();
  const docker = new Docker();
  const sandbox = new Sandbox({ workerId: `bench-egress-${process.pid}`, docker });
  try {
    const network = configSchema.parse({
      network: {
        egress: true,
        resolvers: ["127.0.0.1:53"],
        allow_cidrs: [`${srv.serverIp}/32:${NETNS_PORTS.tcp},${NETNS_PORTS.stream}`],
        connections_per_second: 10_000,
        max_connections: 100_000,
        max_bytes: 1024 * 1024 * 1024,
      },
    }).network;
    const networks = new JobNetworks({
      docker,
      workerId: sandbox.config.workerId,
      runId: sandbox.runId,
      network,
    });
    const direct = await hostDirect(srv.serverIp);
    for (const tier of ["docker", "gvisor"] as const) {
      const run = await runWithEgress(
        sandbox,
        networks,
        network.gvisor_network_runtime,
        {
          jobId: `bench-egress-${tier}-${process.pid}`,
          tier,
          image: "sigil/python:1",
          code: JOB_CODE,
          language: "python",
          env: {
            TCP: `${srv.serverIp}:${NETNS_PORTS.tcp}`,
            STREAM: `${srv.serverIp}:${NETNS_PORTS.stream}`,
          },
          timeoutMs: 120_000,
          limits: { memoryMb: 256, cpus: 1, pids: 64, outputBytes: 65536 },
        },
        {
          egress: [
            {
              cidr: `${srv.serverIp}/32`,
              ports: [NETNS_PORTS.tcp, NETNS_PORTS.stream],
              protocol: "tcp",
            },
          ],
        },
      );
      const num = (k: string) => Number(new RegExp(`^${k} ([0-9.]+)$`, "m").exec(run.stdout)?.[1]);
      if (run.status !== "succeeded") throw new Error(`${tier} job: ${run.status} ${run.stderr}`);
      console.log(
        `job network (${tier}): set-up p50 direct from the host ${direct.setup.toFixed(3)} ms, from the job through the proxy ${num("setup_p50_ms").toFixed(3)} ms; stream best of 3 direct ${direct.bulk.toFixed(0)} MiB/s, through the proxy ${num("bulk_mib_s").toFixed(0)} MiB/s (ratio ${(num("bulk_mib_s") / direct.bulk).toFixed(2)})`,
      );
    }
  } finally {
    await sandbox.shutdown({ graceMs: 0 });
    srv.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bench();
}
