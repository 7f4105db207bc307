// Egress with real Docker (runc tier; docs/sandbox.md "Egress"): jobs on their own internal network
// whose only reachable endpoints are the job's proxy and resolver on the gateway. Destinations are
// test servers in a network namespace this file creates (egress-netns.ts); the names are mapped by
// a DNS server on loopback that `[network] resolvers` points at. Nothing leaves this machine.
import { createSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../shared/config/schema";
import type { EgressRule } from "../../shared/jobs/egress";
import { JobNetworks, NETWORK_LABEL } from "../../worker/egress/network";
import type { SandboxRunResult } from "../../worker/jobs/driver";
import { runWithEgress } from "../../worker/jobs/sandbox-driver";
import { type Sandbox, selfOwner, type Tier } from "../../worker/sandbox";
import {
  JOB_PRELUDE,
  type NetnsServers,
  NETNS_PORTS as P,
  startNetnsServers,
  startTestDns,
} from "./egress-netns";
import { closeSandbox, docker, jobId, newSandbox, PYTHON, TIERS } from "./support";

let srv: NetnsServers;
let dns: { port: number; close(): void };
let sb: Sandbox;
// Host services a job must not reach directly: a TCP and a UDP listener on every address.
let sentinel: Server;
let sentinelPort = 0;
const sentinelHits = { tcp: 0, udp: 0 };
const udp = createSocket("udp4");
let udpPort = 0;

function networkConfig(over: Record<string, unknown> = {}) {
  return configSchema.parse({
    network: {
      egress: true,
      resolvers: [`127.0.0.1:${dns.port}`],
      // The operator's exception for the test servers, as for the security model's Qdrant range.
      allow_cidrs: [`${srv.serverIp}/32:${P.https},${P.http},${P.tcp}`],
      ...over,
    },
  }).network;
}

beforeAll(async () => {
  srv = await startNetnsServers();
  dns = await startTestDns({
    "api.test": srv.serverIp,
    "plain.test": srv.serverIp,
    "other.test": srv.serverIp,
    "loop.test": "127.0.0.1",
    "meta.test": "169.254.169.254",
    "linklocal.test": "169.254.10.1",
    "host.test": srv.hostIp,
  });
  sentinel = createServer((s) => {
    sentinelHits.tcp++;
    s.destroy();
  });
  await new Promise<void>((r) => sentinel.listen(0, "0.0.0.0", () => r()));
  const a = sentinel.address();
  sentinelPort = typeof a === "object" && a ? a.port : 0;
  udp.on("message", () => {
    sentinelHits.udp++;
  });
  await new Promise<void>((r) => udp.bind(0, "0.0.0.0", () => r()));
  udpPort = udp.address().port;
  sb = newSandbox("egress-docker", { images: [PYTHON] });
}, 60_000);

afterAll(async () => {
  await closeSandbox(sb);
  sentinel?.close();
  udp.close();
  dns?.close();
  srv?.close();
});

async function runPython(
  code: string,
  rules: EgressRule[],
  over: Record<string, unknown> = {},
  tier: Tier = "docker",
): Promise<{ run: SandboxRunResult; out: Record<string, string>; networks: JobNetworks }> {
  const owner = selfOwner();
  const networks = new JobNetworks({
    docker,
    workerId: sb.config.workerId,
    runId: sb.runId,
    ...(owner ? { owner } : {}),
    network: networkConfig(over),
    deniedEndpoints: [{ address: "127.0.0.1", port: 6379 }],
  });
  const run = await runWithEgress(
    sb,
    networks,
    "runsc-net",
    {
      jobId: jobId("egress"),
      tier,
      image: PYTHON,
      code: JOB_PRELUDE + code,
      language: "python",
      files: { "ca.pem": srv.caPem },
      timeoutMs: 60_000,
      limits: { memoryMb: 256, cpus: 1, pids: 64, outputBytes: 1 << 20 },
    },
    { egress: rules },
  );
  const out: Record<string, string> = {};
  for (const line of run.stdout.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return { run, out, networks };
}

const denied = (r: SandboxRunResult) => (r.egress?.log ?? []).filter((e) => !e.allowed);
const reasons = (r: SandboxRunResult) => denied(r).map((e) => e.reason ?? "");

describe.each(TIERS)("egress through the job network (%s)", (tier) => {
  it("carries https and http by name and TCP by a cidr rule, from python in the job", async () => {
    const before = { ...srv.hits };
    const { run, out } = await runPython(
      `
out("https", https("api.test", ${P.https}))
out("http", http("http://plain.test:${P.http}/", "plain.test:${P.http}"))
out("tcp", raw("${srv.serverIp}:${P.tcp}"))
out("dns", resolve("api.test"))
out("ifaces", ",".join(sorted(n for _, n in socket.if_nameindex())))
out("eth0", str(socket.if_nametoindex("eth0")))
`,
      [
        { domain: "api.test", ports: [P.https], protocol: "tcp" },
        { domain: "plain.test", ports: [P.http], protocol: "tcp" },
        { cidr: `${srv.serverIp}/32`, ports: [P.tcp], protocol: "tcp" },
      ],
      {},
      tier,
    );
    expect(run.stderr).toBe("");
    expect(run.status).toBe("succeeded");
    expect(run.runtime).toBe(tier === "docker" ? "runc" : "runsc");
    expect(out).toMatchObject({
      https: `ok:api.test`,
      http: `200:plain.test:${P.http}`,
      tcp: "200:tcp hello",
      dns: srv.serverIp,
      ifaces: "eth0,lo",
    });
    // gVisor's own netstack (runsc-net, docs/sandbox.md "Egress") numbers its NICs lo 1, eth0 2;
    // the host kernel's stack (runc, or runsc --network=host) shows the veth's host-side index.
    expect(out.eth0 === "2").toBe(tier === "gvisor");
    expect(srv.hits.https - before.https).toBe(1);
    expect(srv.hits.http - before.http).toBe(1);
    expect(srv.hits.tcp - before.tcp).toBe(1);
    expect(run.egress?.summary).toMatchObject({ connections: 3, refused: 0 });
    expect(run.egress?.summary.bytesDown).toBeGreaterThan(0);
    expect(run.egress?.summary.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses, with a logged reason and no bytes through: unlisted names, raw IPs, rebinding, fronting, the proxy, Redis, direct host ports, UDP", async () => {
    const before = { ...srv.hits, ...sentinelHits };
    const { run, out } = await runPython(
      `
out("nx_dns", resolve("evil.test"))
out("nx_proxy", https("evil.test", ${P.https}))
out("raw_ip", raw("${srv.serverIp}:${P.http}"))
out("loop", raw("loop.test:6379"))
out("meta", http("http://meta.test:80/", "meta.test"))
out("linklocal", raw("linklocal.test:${P.tcp}"))
out("hostname", raw("host.test:${sentinelPort}"))
out("sni_front", https("api.test", ${P.https}, sni="other.test"))
out("host_front", http("http://plain.test:${P.http}/", "other.test"))
out("proxy_self", raw(f"{PH}:{PP}"))
out("proxy_dns", raw(f"{PH}:53"))
out("redis", raw("127.0.0.1:6379"))
out("direct_gw", direct(PH, ${sentinelPort}))
out("direct_out", direct("${srv.serverIp}", ${P.http}))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5): u.sendto(b"x", (PH, ${udpPort}))
out("udp", "sent")
out("gw", PH)
`,
      [
        { domain: "api.test", ports: [P.https], protocol: "tcp" },
        { domain: "plain.test", ports: [P.http], protocol: "tcp" },
        { domain: "loop.test", ports: [6379], protocol: "tcp" },
        { domain: "meta.test", ports: [80], protocol: "tcp" },
        { domain: "linklocal.test", ports: [P.tcp], protocol: "tcp" },
        { domain: "host.test", ports: [sentinelPort], protocol: "tcp" },
        { cidr: `${srv.serverIp}/32`, ports: [P.tcp], protocol: "tcp" },
      ],
      {},
      tier,
    );
    expect(run.stderr).toBe("");
    expect(out).toMatchObject({
      nx_dns: "gaierror",
      nx_proxy: "status403",
      raw_ip: "403:",
      loop: "403:",
      meta: expect.stringMatching(/^403:/),
      linklocal: "403:",
      hostname: "403:",
      host_front: expect.stringMatching(/^403:/),
      proxy_self: "403:",
      proxy_dns: "403:",
      redis: "403:",
      direct_gw: expect.stringMatching(/^fail:/),
      direct_out: expect.stringMatching(/^fail:/),
      udp: "sent",
    });
    // Fronting by SNI: the tunnel is answered, then cut at the ClientHello, before any connect.
    expect(out.sni_front).toMatch(/^fail:/);
    // The proxy's refusals, in order; then what the firewall dropped (read from the kernel log).
    const r = denied(run)
      .filter((e) => e.kind !== "direct")
      .map((e) => e.reason ?? "");
    expect(r).toEqual([
      "name and port not on the job's allow-list",
      "IP address not covered by a cidr rule",
      expect.stringMatching(
        /resolved address refused: 127\.0\.0\.1|is the proxy, its resolver or Redis/,
      ),
      expect.stringMatching(/^resolved address refused: 169\.254\.169\.254 is a cloud-metadata/),
      expect.stringMatching(/^resolved address refused: 169\.254\.10\.1 is a link-local/),
      expect.stringMatching(
        /^resolved address refused: 10\.231\.\d+\.1 is an address of this host/,
      ),
      "SNI other.test differs from the CONNECT target",
      expect.stringMatching(/^Host other.test differs/),
      // The proxy's own address (the gateway, its port or the resolver's) has its own reason,
      // ahead of the rule match; a name resolving to it too (egress-proxy.test.ts).
      "proxy address",
      "proxy address",
      // Redis by IP: no rule covers it (by a rule it is refused as Redis, egress-proxy.test.ts).
      "IP address not covered by a cidr rule",
    ]);
    const direct = denied(run).filter((e) => e.kind === "direct");
    expect(direct).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          address: out.gw,
          port: sentinelPort,
          reason: expect.stringMatching(/^direct TCP connection, not through the proxy/),
        }),
        expect.objectContaining({
          address: out.gw,
          port: udpPort,
          reason: expect.stringMatching(/^UDP other than the job's resolver/),
        }),
      ]),
    );
    // Nothing else: under gVisor the direct connection to the server also leaves the sandbox (its
    // netstack routes by the gateway) and is dropped there; under runc it has no route at all.
    for (const d of direct) expect([sentinelPort, udpPort, P.http]).toContain(d.port);
    expect(direct.length).toBeLessThanOrEqual(3);
    for (const e of denied(run)) expect(e).toMatchObject({ bytesUp: 0, bytesDown: 0 });
    expect(run.egress?.summary).toMatchObject({
      connections: 0,
      refused: 11 + direct.length,
      bytesUp: 0,
      bytesDown: 0,
    });
    // No request reached a test server or a host service.
    expect({ ...srv.hits, ...sentinelHits }).toEqual(before);
  });

  it("takes its network from [network] job_subnet_pool when one is set, and still gets out only through the proxy", async () => {
    const { run, out } = await runPython(
      `
out("tcp", raw("${srv.serverIp}:${P.tcp}"))
out("addr", socket.gethostbyname(socket.gethostname()))
`,
      [{ cidr: `${srv.serverIp}/32`, ports: [P.tcp], protocol: "tcp" }],
      { job_subnet_pool: "10.233.0.0/24" },
      tier,
    );
    expect(run.status).toBe("succeeded");
    expect(out.tcp).toBe("200:tcp hello");
    expect(out.addr).toMatch(/^10\.233\.0\.\d+$/);
  });

  it("refuses connections above the per-job rate", async () => {
    const { run, out } = await runPython(
      `
res = [https("api.test", ${P.https}) for _ in range(8)]
out("ok", sum(1 for r in res if r.startswith("ok:")))
out("refused", sum(1 for r in res if r == "status403"))
`,
      [{ domain: "api.test", ports: [P.https], protocol: "tcp" }],
      { connections_per_second: 1 },
      tier,
    );
    expect(Number(out.ok)).toBeGreaterThanOrEqual(1);
    expect(Number(out.refused)).toBeGreaterThanOrEqual(1);
    expect(reasons(run)).toContain("rate limit: too many connections per second");
    expect(run.egress?.summary.refused).toBe(Number(out.refused));
  });

  it("a job without rules has only lo, and leaves no network or firewall rule behind", async () => {
    const { run, out } = await runPython(
      `out("ifaces", ",".join(sorted(n for _, n in socket.if_nameindex())))`,
      [],
      {},
      tier,
    );
    expect(run.status).toBe("succeeded");
    expect(out.ifaces).toBe("lo");
    expect(run.egress).toBeUndefined();
  });
});

describe("egress network lifecycle", () => {
  it("removes the network and its firewall rules after the job, and a dead run's leftovers at cleanup", async () => {
    const { run, networks } = await runPython(`out("x", "1")`, [
      { domain: "api.test", ports: [P.https], protocol: "tcp" },
    ]);
    expect(run.status).toBe("succeeded");
    const mine = async () =>
      docker.listNetworks({
        filters: { label: [`${NETWORK_LABEL.worker}=${sb.config.workerId}`] },
      });
    expect(await mine()).toEqual([]);
    const { execFileSync } = await import("node:child_process");
    const rules = () =>
      ["filter", "nat"].flatMap((t) =>
        execFileSync("iptables", ["-w", "5", "-t", t, "-S"]).toString().split("\n"),
      );
    // A network opened and never closed (a worker that died mid-job): an earlier run's leftovers.
    const open = await networks.openFor("leftover", [
      { domain: "api.test", ports: [P.https], protocol: "tcp" },
    ]);
    const bridge = open.attachment.network;
    expect(rules().some((l) => l.includes(bridge))).toBe(true);
    const later = new JobNetworks({
      docker,
      workerId: sb.config.workerId,
      runId: "a-later-run",
      network: networkConfig(),
    });
    expect(await later.cleanupOrphans(selfOwner())).toBeGreaterThan(0);
    expect(await mine()).toEqual([]);
    expect(rules().some((l) => l.includes(bridge))).toBe(false);
    await open.close();
  });
});
