// The worker's egress proxy and filtering resolver (worker/egress/, docs/sandbox.md "Egress")
// against test servers this file starts on loopback: a DNS server answering the `.test` names, an
// https server (throwaway CA made here with openssl), an http server and a raw TCP service. The
// proxy listens on 127.0.0.2 so its own address differs from the servers'; nothing leaves loopback.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import {
  connect,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import * as dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../shared/config/schema";
import type { EgressRule } from "../../shared/jobs/egress";
import { type JobEgress, startJobEgress } from "../../worker/egress";
import { startTestDns } from "./egress-netns";

const PROXY_HOST = "127.0.0.2";
const tmp = mkdtempSync(join(tmpdir(), "sigil-egress-"));
let ca: Buffer;
let dnsServer: Awaited<ReturnType<typeof startTestDns>>;
let dnsPort = 0;
let https: HttpsServer;
let http: HttpServer;
let tcp: TcpServer;
const hits = { https: 0, http: 0, tcp: 0 };
const port = { https: 0, http: 0, tcp: 0 };

// The test's DNS: names the jobs use, and names that rebind to places no job may reach.
const ZONE: Record<string, string> = {
  "api.test": "127.0.0.1",
  "plain.test": "127.0.0.1",
  "other.test": "127.0.0.1",
  "loop.test": "127.0.0.1",
  "meta.test": "169.254.169.254",
  "linklocal.test": "169.254.10.1",
  "proxy.test": PROXY_HOST,
};

function openssl(...args: string[]) {
  execFileSync("openssl", args, { cwd: tmp, stdio: "pipe" });
}

const listen = (s: HttpServer | HttpsServer | TcpServer): Promise<number> =>
  new Promise((r) =>
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      r(typeof a === "object" && a ? a.port : 0);
    }),
  );

beforeAll(async () => {
  openssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=sigil test CA",
  );
  openssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "srv.key",
    "-out",
    "srv.csr",
    "-subj",
    "/CN=api.test",
  );
  execFileSync("sh", ["-c", "printf 'subjectAltName=DNS:api.test,DNS:other.test\\n' > ext.cnf"], {
    cwd: tmp,
  });
  openssl(
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "srv.pem",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
  ca = readFileSync(join(tmp, "ca.pem"));
  https = createHttpsServer(
    { key: readFileSync(join(tmp, "srv.key")), cert: readFileSync(join(tmp, "srv.pem")) },
    (req, res) => {
      hits.https++;
      res.end(`https ${req.headers.host}`);
    },
  );
  http = createHttpServer((req, res) => {
    hits.http++;
    if (req.url?.startsWith("/big")) res.end(Buffer.alloc(256 * 1024, 1));
    else res.end(`http ${req.headers.host}`);
  });
  tcp = createTcpServer((s) => {
    hits.tcp++;
    s.end("tcp hello\n");
  });
  port.https = await listen(https);
  port.http = await listen(http);
  port.tcp = await listen(tcp);

  dnsServer = await startTestDns(ZONE);
  dnsPort = dnsServer.port;
});

afterAll(async () => {
  dnsServer?.close();
  for (const s of [https, http, tcp]) s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function network(over: Record<string, unknown> = {}) {
  return configSchema.parse({
    network: {
      egress: true,
      resolvers: [`127.0.0.1:${dnsPort}`],
      // The operator's exception that lets loopback test servers stand in for the outside.
      allow_cidrs: [`127.0.0.1/32:${port.https},${port.http},${port.tcp}`],
      ...over,
    },
  }).network;
}

async function withEgress(
  rules: EgressRule[],
  run: (e: JobEgress) => Promise<void>,
  over: Record<string, unknown> = {},
) {
  const e = await startJobEgress({
    jobId: "job-1",
    rules,
    network: network(over),
    bindHost: PROXY_HOST,
    hostAddresses: [PROXY_HOST],
    deniedEndpoints: [{ address: "127.0.0.1", port: 6379 }],
  });
  try {
    await run(e);
  } finally {
    await e.stop();
  }
}

/**
 * A job whose only rule (and the operator's only exception) is `server`'s loopback port: `run`
 * gets a tunnel opened to it (200 checked). The server is closed afterwards.
 */
async function throughTunnelTo(
  server: TcpServer,
  run: (t: { status: number; sock: Socket }, e: JobEgress) => Promise<void>,
  allowHalfOpen = false,
) {
  const serverPort = await listen(server);
  try {
    await withEgress(
      [{ cidr: "127.0.0.1/32", ports: [serverPort], protocol: "tcp" }],
      async (e) => {
        const t = await tunnel(e, `127.0.0.1:${serverPort}`, allowHalfOpen);
        expect(t.status).toBe(200);
        await run(t, e);
      },
      { allow_cidrs: [`127.0.0.1/32:${serverPort}`] },
    );
  } finally {
    server.close();
  }
}

/** Opens a CONNECT tunnel; resolves with the status line and the socket. */
function tunnel(
  e: JobEgress,
  target: string,
  allowHalfOpen = false,
): Promise<{ status: number; sock: Socket }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port: e.proxyPort, host: PROXY_HOST, allowHalfOpen });
    sock.once("error", reject);
    sock.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    let buf = "";
    const onData = (d: Buffer) => {
      buf += d.toString("latin1");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      sock.off("data", onData);
      resolve({ status: Number(buf.split(" ")[1]), sock });
    };
    sock.on("data", onData);
  });
}

function httpsThrough(e: JobEgress, target: string, servername: string): Promise<string> {
  return tunnel(e, target).then(
    ({ status, sock }) =>
      new Promise((resolve, reject) => {
        if (status !== 200) return reject(new Error(`CONNECT ${status}`));
        const t = tlsConnect({ socket: sock, servername, ca }, () => {
          t.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
        });
        let out = "";
        t.on("data", (d: Buffer) => {
          out += d.toString();
        });
        t.on("end", () => resolve(out));
        t.on("close", () => resolve(out));
        t.on("error", reject);
      }),
  );
}

function httpThrough(
  e: JobEgress,
  url: string,
  host: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(e.proxyPort, PROXY_HOST);
    sock.write(`GET ${url} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    let out = "";
    sock.on("data", (d: Buffer) => {
      out += d.toString();
    });
    sock.on("close", () =>
      resolve({ status: Number(out.split(" ")[1]), body: out.split("\r\n\r\n").slice(1).join("") }),
    );
    sock.on("error", reject);
  });
}

function dnsAsk(
  e: JobEgress,
  name: string,
  type: "A" | "TXT" = "A",
): Promise<{ rcode: number; answers: string[] }> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    s.on("message", (m) => {
      const p = dnsPacket.decode(m);
      s.close();
      resolve({
        rcode: (p.flags ?? 0) & 0xf,
        answers: (p.answers ?? []).flatMap((a) =>
          "data" in a && typeof a.data === "string" ? [a.data] : [],
        ),
      });
    });
    s.send(
      dnsPacket.encode({ type: "query", id: 7, questions: [{ type, name, class: "IN" }] }),
      e.dnsPort,
      PROXY_HOST,
    );
  });
}

const last = (e: JobEgress) => e.proxy.log[e.proxy.log.length - 1]!;

describe("egress proxy: allowed", () => {
  it("carries a tunnel's bytes unaltered both ways, a slow reader included (backpressure), and counts them", async () => {
    // Random bytes each way, in bulk then in small pieces (reads of their own); the reader
    // pauses so that the proxy's writes to it queue and its reads stop and restart (proxy.ts
    // reads destinations into buffers of its own and relays without pipe()).
    const down = randomBytes(16 * 1024 * 1024);
    const bulk = 12 * 1024 * 1024;
    const up = randomBytes(3 * 1024 * 1024 + 17);
    const received: Buffer[] = [];
    const server = createTcpServer((s) => {
      s.on("error", () => {});
      s.on("data", (d: Buffer) => received.push(d));
      // Sending starts at the job's first bytes, so none share a read with the CONNECT answer.
      s.once("data", () => {
        s.write(down.subarray(0, bulk));
        let at = bulk;
        const piece = () => {
          if (at >= down.length) return void s.end();
          s.write(down.subarray(at, at + 1000));
          at += 1000;
          setImmediate(piece);
        };
        piece();
      });
    });
    await throughTunnelTo(server, async (t, e) => {
      t.sock.write(up);
      const got: Buffer[] = [];
      await new Promise<void>((resolve) => {
        t.sock.on("data", (d: Buffer) => {
          got.push(d);
          // Long enough for the kernel's socket buffers to fill behind the reader.
          if (got.length % 64 === 1) {
            t.sock.pause();
            setTimeout(() => t.sock.resume(), 150);
          }
        });
        t.sock.on("close", () => resolve());
      });
      const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
      expect(sha(Buffer.concat(got))).toBe(sha(down));
      expect(sha(Buffer.concat(received))).toBe(sha(up));
      await new Promise((r) => setTimeout(r, 50));
      expect(last(e)).toMatchObject({
        allowed: true,
        bytesUp: up.length,
        bytesDown: down.length,
      });
    });
  });

  it("keeps a half-closed tunnel open the other way: a job that ends its request still gets the whole reply", async () => {
    // A request-then-shutdown(SHUT_WR) client (HTTP/1.0 style, netcat -N): the server answers
    // only after the job's end, so a proxy that closes both ways on the first end cuts it off.
    const reply = randomBytes(2 * 1024 * 1024);
    const server = createTcpServer({ allowHalfOpen: true }, (s) => {
      s.on("error", () => {});
      const got: Buffer[] = [];
      s.on("data", (d: Buffer) => got.push(d));
      s.on("end", () => {
        s.write(Buffer.concat(got));
        s.end(reply);
      });
    });
    await throughTunnelTo(server, async (t, e) => {
      const got: Buffer[] = [];
      const closed = new Promise<void>((resolve) => {
        t.sock.on("data", (d: Buffer) => got.push(d));
        t.sock.on("close", () => resolve());
      });
      t.sock.end("request");
      await closed;
      const all = Buffer.concat(got);
      expect(all.subarray(0, 7).toString()).toBe("request");
      expect(all.subarray(7).equals(reply)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
      expect(last(e)).toMatchObject({ allowed: true, bytesUp: 7, bytesDown: 7 + reply.length });
    });
  });

  it("keeps a tunnel the destination half-closed open the other way: the job's later bytes still arrive", async () => {
    let serverGot = "";
    let serverEnded: () => void = () => {};
    const ended = new Promise<void>((r) => {
      serverEnded = r;
    });
    const server = createTcpServer({ allowHalfOpen: true }, (s) => {
      s.on("error", () => {});
      s.on("data", (d: Buffer) => {
        serverGot += d.toString();
      });
      s.on("end", () => {
        s.destroy();
        serverEnded();
      });
      s.once("data", () => s.end("greeting"));
    });
    // The job's socket stays writable after the destination's end, as a job's may.
    await throughTunnelTo(
      server,
      async (t) => {
        let got = "";
        const greeted = new Promise<void>((resolve) => {
          t.sock.on("data", (d: Buffer) => {
            got += d.toString();
          });
          t.sock.on("end", () => resolve());
        });
        t.sock.write("first");
        await greeted;
        expect(got).toBe("greeting");
        t.sock.end("-after");
        await ended;
        expect(serverGot).toBe("first-after");
      },
      true,
    );
  });

  it("carries https by name (SNI matching the CONNECT target), http by name, TCP by a cidr rule; logs each", async () => {
    await withEgress(
      [
        { domain: "api.test", ports: [port.https], protocol: "tcp" },
        { domain: "plain.test", ports: [port.http], protocol: "tcp" },
        { cidr: "127.0.0.1/32", ports: [port.tcp], protocol: "tcp" },
      ],
      async (e) => {
        expect(await httpsThrough(e, `api.test:${port.https}`, "api.test")).toContain(
          `https api.test`,
        );
        const r = await httpThrough(e, `http://plain.test:${port.http}/`, "plain.test");
        expect(r).toMatchObject({ status: 200, body: "http plain.test" });
        const t = await tunnel(e, `127.0.0.1:${port.tcp}`);
        expect(t.status).toBe(200);
        const got = await new Promise<string>((res) => {
          let s = "";
          t.sock.on("data", (d: Buffer) => {
            s += d.toString();
          });
          t.sock.on("close", () => res(s));
        });
        expect(got).toBe("tcp hello\n");
        await new Promise((r) => setTimeout(r, 50));
        expect(e.proxy.log.map((l) => [l.kind, l.host, l.allowed])).toEqual([
          ["connect", "api.test", true],
          ["http", "plain.test", true],
          ["connect", "127.0.0.1", true],
        ]);
        expect(e.proxy.log.every((l) => l.address === "127.0.0.1" && l.bytesDown > 0)).toBe(true);
        const s = e.proxy.summary();
        expect(s).toMatchObject({ connections: 3, refused: 0 });
        expect(s.digest).toMatch(/^[0-9a-f]{64}$/);
        // The resolver answers the job's names only.
        expect(await dnsAsk(e, "api.test")).toEqual({ rcode: 0, answers: ["127.0.0.1"] });
        expect((await dnsAsk(e, "other.test")).rcode).toBe(3);
        expect((await dnsAsk(e, "api.test", "TXT")).rcode).toBe(5);
      },
    );
  });
});

describe("egress proxy: refused, with a logged reason and no bytes through", () => {
  const rules = (): EgressRule[] => [
    { domain: "api.test", ports: [port.https], protocol: "tcp" },
    { domain: "plain.test", ports: [port.http], protocol: "tcp" },
    { domain: "meta.test", ports: [80], protocol: "tcp" },
    { domain: "linklocal.test", ports: [80], protocol: "tcp" },
    { domain: "loop.test", ports: [5432], protocol: "tcp" },
    { domain: "proxy.test", ports: [port.https], protocol: "tcp" },
    { domain: "nx.test", ports: [443], protocol: "tcp" },
    { cidr: "127.0.0.1/32", ports: [6379], protocol: "tcp" },
  ];

  it("names off the list, NXDOMAIN, raw IPs, rebinding to metadata/link-local/loopback, the proxy itself and Redis", async () => {
    await withEgress(rules(), async (e) => {
      const before = { ...hits };
      const cases: [string, RegExp][] = [
        [`other.test:${port.https}`, /not on the job's allow-list/],
        ["nx.test:443", /NXDOMAIN/],
        [`127.0.0.1:${port.https}`, /IP address not covered/],
        ["meta.test:80", /cloud-metadata/],
        ["linklocal.test:80", /link-local/],
        ["loop.test:5432", /loopback address and no exception/],
        [`proxy.test:${port.https}`, /^proxy address$/],
        ["127.0.0.1:6379", /proxy, its resolver or Redis/],
        [`127.0.0.2:${e.proxyPort}`, /^proxy address$/],
        ["127.0.0.2:53", /^proxy address$/],
      ];
      for (const [target, reason] of cases) {
        const t = await tunnel(e, target);
        expect(t.status, target).toBe(403);
        t.sock.destroy();
        expect(last(e)).toMatchObject({ allowed: false, bytesUp: 0, bytesDown: 0 });
        expect(last(e).reason, target).toMatch(reason);
      }
      expect(hits).toEqual(before);
      expect(e.proxy.summary().refused).toBe(cases.length);
    });
  });

  it("refuses domain fronting: SNI or Host naming another host than the target", async () => {
    await withEgress(rules(), async (e) => {
      const before = { ...hits };
      await expect(httpsThrough(e, `api.test:${port.https}`, "other.test")).rejects.toThrow();
      expect(last(e)).toMatchObject({
        allowed: false,
        reason: expect.stringMatching(/SNI other.test differs/),
      });
      const r = await httpThrough(e, `http://plain.test:${port.http}/`, "api.test");
      expect(r.status).toBe(403);
      expect(last(e)).toMatchObject({
        allowed: false,
        reason: expect.stringMatching(/Host api.test differs/),
      });
      // A tunnel to a name that sends no TLS at all.
      const t = await tunnel(e, `api.test:${port.https}`);
      t.sock.write("GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
      await new Promise((r) => t.sock.on("close", r));
      expect(last(e)).toMatchObject({
        allowed: false,
        reason: expect.stringMatching(/unreadable/),
      });
      expect(hits).toEqual(before);
    });
  });

  it("limits new connections per second and bytes per job", async () => {
    await withEgress(
      rules(),
      async (e) => {
        const statuses: number[] = [];
        for (let i = 0; i < 6; i++) {
          statuses.push(
            (await httpThrough(e, `http://plain.test:${port.http}/`, "plain.test")).status,
          );
        }
        expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
        expect(statuses.filter((s) => s === 403).length).toBeGreaterThanOrEqual(2);
        expect(
          e.proxy.log.filter((l) => /rate limit/.test(l.reason ?? "")).length,
        ).toBeGreaterThanOrEqual(2);
      },
      { connections_per_second: 3 },
    );
    await withEgress(
      rules(),
      async (e) => {
        const r = await httpThrough(e, `http://plain.test:${port.http}/big`, "plain.test");
        expect(r.body.length).toBeLessThan(256 * 1024);
        await new Promise((res) => setTimeout(res, 50));
        expect(e.proxy.log.some((l) => l.reason === "byte limit reached")).toBe(true);
        const next = await httpThrough(e, `http://plain.test:${port.http}/`, "plain.test");
        expect(next.status).toBe(403);
        expect(last(e).reason).toBe("byte limit reached");
      },
      { max_bytes: 64 * 1024 },
    );
  });
});

/** `n` questions for `name` at once from one socket; the ids answered within `waitMs`. */
function dnsBurst(e: JobEgress, name: string, n: number, waitMs = 500): Promise<number[]> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const answered: number[] = [];
    s.on("message", (m) => answered.push(dnsPacket.decode(m).id ?? -1));
    for (let id = 1; id <= n; id++)
      s.send(
        dnsPacket.encode({ type: "query", id, questions: [{ type: "A", name, class: "IN" }] }),
        e.dnsPort,
        PROXY_HOST,
      );
    setTimeout(() => {
      s.close();
      resolve(answered);
    }, waitMs);
  });
}

describe("egress: a job that keeps trying stays bounded", () => {
  const rules = (): EgressRule[] => [
    { domain: "api.test", ports: [port.https], protocol: "tcp" },
    { domain: "plain.test", ports: [port.http], protocol: "tcp" },
  ];

  it("past its connection limit, refusals are itemised up to 1,024 and the rest counted in one entry", async () => {
    // Refusals for the connection limit spend no rate token: without a bound, a loop of them
    // grows the worker's memory (and the reported log) for as long as the job runs.
    const e = await startJobEgress({
      jobId: "job-flood",
      rules: rules(),
      network: network({ max_connections: 1 }),
      bindHost: PROXY_HOST,
      hostAddresses: [PROXY_HOST],
    });
    let summary: Awaited<ReturnType<JobEgress["stop"]>>;
    try {
      expect((await httpThrough(e, `http://plain.test:${port.http}/`, "plain.test")).status).toBe(
        200,
      );
      const attempts = 1300;
      for (let i = 0; i < attempts; i += 50) {
        const statuses = await Promise.all(
          Array.from({ length: 50 }, () =>
            tunnel(e, `127.0.0.1:${port.tcp}`).then(({ status, sock }) => {
              sock.destroy();
              return status;
            }),
          ),
        );
        expect(statuses.every((s) => s === 403)).toBe(true);
      }
    } finally {
      summary = await e.stop();
    }
    const log = e.proxy.log;
    expect(log).toHaveLength(1 + 1024 + 1);
    expect(log.slice(1, 1025).every((l) => l.reason === "connection limit reached")).toBe(true);
    expect(log[1025]).toMatchObject({
      allowed: false,
      host: "",
      port: 0,
      reason: "276 more refused connections, not itemised",
    });
    expect(summary).toMatchObject({ connections: 1, refused: 1025 });
  });

  it("firewall drops are itemised up to 1,024 apart from the proxy's refusals; none joins after the account closes", async () => {
    const e = await startJobEgress({
      jobId: "job-drops",
      rules: rules(),
      network: network({ max_connections: 1 }),
      bindHost: PROXY_HOST,
      hostAddresses: [PROXY_HOST],
    });
    const drop = (i: number) =>
      e.proxy.recordDrop({
        protocol: i % 2 ? "udp" : "tcp",
        destination: "10.9.9.9",
        port: i,
        at: Date.now(),
      });
    for (let i = 1; i <= 1100; i++) drop(i);
    // The drops' bound does not spend the proxy's: a refusal after them is still itemised.
    expect((await tunnel(e, "127.0.0.9:1")).status).toBe(403);
    e.proxy.endDrops();
    drop(5000);
    await e.stop();
    const direct = e.proxy.log.filter((l) => l.kind === "direct");
    expect(direct).toHaveLength(1025);
    expect(direct.slice(0, 2).map((l) => l.reason)).toEqual([
      "UDP other than the job's resolver (dropped by the job network's firewall)",
      "direct TCP connection, not through the proxy (dropped by the job network's firewall)",
    ]);
    expect(direct[1024]).toMatchObject({
      host: "",
      reason: "76 more flows dropped by the job network's firewall, not itemised",
    });
    expect(direct.some((l) => l.port === 5000)).toBe(false);
    expect(e.proxy.log.filter((l) => l.kind !== "direct")).toMatchObject([
      { allowed: false, host: "127.0.0.9", reason: "IP address not covered by a cidr rule" },
    ]);
  });

  it("bytes that are not an HTTP request, and a head too large, are refused and logged", async () => {
    const raw = (e: JobEgress, bytes: Buffer): Promise<string> =>
      new Promise((resolve) => {
        const sock = connect(e.proxyPort, PROXY_HOST);
        let out = "";
        sock.on("data", (d: Buffer) => {
          out += d.toString("latin1");
        });
        sock.on("close", () => resolve(out));
        sock.on("error", () => {});
        sock.end(bytes);
      });
    await withEgress(rules(), async (e) => {
      // A ClientHello sent straight to the proxy (an application that ignores proxy semantics),
      // an ill-formed request line with a lone surrogate's UTF-8 bytes, a 64 KiB header.
      const hello = Buffer.from("160301002a010000260303", "hex");
      expect(await raw(e, hello)).toMatch(/^HTTP\/1\.1 400 /);
      const bad = Buffer.concat([
        Buffer.from("GET http://a\u00e9"),
        Buffer.from([0xed, 0xa0, 0x80]),
      ]);
      expect(await raw(e, Buffer.concat([bad, Buffer.from(" HTTP/1.1\r\n\r\n")]))).toMatch(
        /^HTTP\/1\.1 400 /,
      );
      const big = `GET http://plain.test:${port.http}/ HTTP/1.1\r\nHost: plain.test\r\nX: ${"a".repeat(64 * 1024)}\r\n\r\n`;
      expect(await raw(e, Buffer.from(big))).toMatch(/^HTTP\/1\.1 431 /);
      await new Promise((r) => setTimeout(r, 50));
      expect(e.proxy.log.map((l) => [l.allowed, l.reason])).toEqual([
        [false, "malformed request"],
        [false, "malformed request"],
        [false, "request head too large"],
      ]);
    });
  });

  it("the resolver answers at most 2 x connections_per_second questions a second; its log is bounded", async () => {
    await withEgress(
      rules(),
      async (e) => {
        const first = await dnsBurst(e, "api.test", 40);
        expect(first.length).toBeGreaterThanOrEqual(1);
        expect(first.length).toBeLessThanOrEqual(12);
        // The bucket refills: a question a second later is answered again.
        await new Promise((r) => setTimeout(r, 1000));
        expect(await dnsAsk(e, "api.test")).toEqual({ rcode: 0, answers: ["127.0.0.1"] });
      },
      { connections_per_second: 5 },
    );
    await withEgress(
      rules(),
      async (e) => {
        // Refused names answer at once (no upstream): 1,500 of them in batches (a socket's
        // receive buffer holds a few hundred), more than 1,024 answered, 1,024 kept.
        let answered = 0;
        for (let i = 0; i < 15; i++)
          answered += (await dnsBurst(e, "not-listed.test", 100, 100)).length;
        expect(answered).toBeGreaterThan(1024);
        expect(e.dnsLog).toHaveLength(1024);
      },
      { connections_per_second: 10_000 },
    );
  });
});
