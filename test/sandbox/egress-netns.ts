// Destinations for the egress tests and bench, all on this machine: a network namespace created
// here with a veth pair (the host end and the namespace end on a /30 of their own), test servers
// inside it (egress-netns-server.mjs: https with a throwaway CA, http, TCP, a byte stream), and a DNS
// server on loopback that the worker's resolver config points at (`[network] resolvers`, the
// ordinary setting, no bypass), mapping the test names. Nothing is routed beyond the /30.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as dnsPacket from "dns-packet";

export const NETNS_PORTS = { https: 8443, http: 8080, tcp: 7000, stream: 7002 } as const;

export interface NetnsServers {
  ns: string;
  /** The host end of the veth pair (an address of this host: never a destination). */
  hostIp: string;
  /** The test servers' address, inside the namespace. */
  serverIp: string;
  caPem: string;
  caPath: string;
  hits: { https: number; http: number; tcp: number };
  close(): void;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: "pipe" });

function makeCerts(dir: string) {
  const openssl = (...a: string[]) => execFileSync("openssl", a, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=sigil test CA",
  );
  openssl("req", ...ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=api.test");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:api.test,DNS:other.test\n");
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
}

/** Creates the namespace and starts the servers in it; resolves once they listen. */
export async function startNetnsServers(): Promise<NetnsServers> {
  const id = (process.pid % 200) + 20;
  const ns = `sgtest${process.pid}`;
  const hostIf = `sgth${process.pid % 100000}`;
  const hostIp = `10.231.${id}.1`;
  const serverIp = `10.231.${id}.2`;
  const dir = mkdtempSync(join(tmpdir(), "sigil-egress-ns-"));
  makeCerts(dir);
  sh("ip", ["netns", "add", ns]);
  let child: ChildProcess | undefined;
  const close = () => {
    child?.kill("SIGKILL");
    try {
      sh("ip", ["link", "del", hostIf]);
    } catch {}
    try {
      sh("ip", ["netns", "del", ns]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    sh("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    sh("ip", ["addr", "add", `${hostIp}/30`, "dev", hostIf]);
    sh("ip", ["link", "set", hostIf, "up"]);
    sh("ip", ["-n", ns, "addr", "add", `${serverIp}/30`, "dev", "eth0"]);
    sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const hits = { https: 0, http: 0, tcp: 0 };
    const script = join(import.meta.dirname, "egress-netns-server.mjs");
    const c = spawn(
      "ip",
      [
        "netns",
        "exec",
        ns,
        process.execPath,
        script,
        serverIp,
        join(dir, "srv.pem"),
        join(dir, "srv.key"),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    child = c;
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      c.once("exit", (code) => reject(new Error(`netns servers exited (${code})`)));
      c.stdout?.on("data", (d: Buffer) => {
        buf += d.toString();
        let i = buf.indexOf("\n");
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === "ready") resolve();
          const kind = /^hit (https|http|tcp)$/.exec(line)?.[1] as keyof typeof hits | undefined;
          if (kind) hits[kind]++;
          i = buf.indexOf("\n");
        }
      });
    });
    const caPath = join(dir, "ca.pem");
    return { ns, hostIp, serverIp, caPath, caPem: readFileSync(caPath, "utf8"), hits, close };
  } catch (e) {
    close();
    throw e;
  }
}

/** A DNS server on loopback answering A for `zone`, NXDOMAIN otherwise. */
export async function startTestDns(
  zone: Record<string, string>,
): Promise<{ port: number; close(): void }> {
  const s: UdpSocket = createSocket("udp4");
  s.on("message", (msg, r) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions?.[0];
    if (!question) return;
    const addr = zone[question.name];
    const answers: dnsPacket.Answer[] =
      addr && question.type === "A"
        ? [{ type: "A", name: question.name, ttl: 5, class: "IN", data: addr }]
        : [];
    s.send(
      dnsPacket.encode({
        type: "response",
        id: q.id ?? 0,
        flags: addr ? 0 : 3,
        questions: q.questions ?? [],
        answers,
      }),
      r.port,
      r.address,
    );
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  return { port: s.address().port, close: () => s.close() };
}

// The job's side: python's socket and ssl only (the image has no http modules). Each check prints
// one `name=outcome` line.
export const JOB_PRELUDE = `
import os, socket, ssl, sys
PH, PP = os.environ.get("HTTPS_PROXY", "http://none:0").split("//")[1].split(":"); PP = int(PP)
def out(k, v): print(f"{k}={v}", flush=True)
def recv_all(s):
    b = b""
    try:
        while True:
            d = s.recv(65536)
            if not d: break
            b += d
    except Exception:
        pass
    return b
def tunnel(target):
    s = socket.create_connection((PH, PP), 5)
    s.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        d = s.recv(1)
        if not d: break
        head += d
    return s, (head.split(b" ")[1].decode() if head else "closed")
def https(name, port, sni=None):
    s, st = tunnel(f"{name}:{port}")
    if st != "200": return "status" + st
    ctx = ssl.create_default_context(cafile="ca.pem")
    ctx.check_hostname = sni is None
    try:
        t = ctx.wrap_socket(s, server_hostname=sni or name)
        t.sendall(f"GET / HTTP/1.1\\r\\nHost: {name}\\r\\nConnection: close\\r\\n\\r\\n".encode())
        return "ok:" + recv_all(t).split(b"\\r\\n\\r\\n", 1)[1].decode()
    except Exception as e:
        return "fail:" + type(e).__name__
def http(url, host):
    s = socket.create_connection((PH, PP), 5)
    s.sendall(f"GET {url} HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n".encode())
    r = recv_all(s).split(b"\\r\\n\\r\\n", 1)
    return r[0].split(b" ")[1].decode() + ":" + (r[1].decode() if len(r) > 1 else "")
def raw(target):
    s, st = tunnel(target)
    return st + ":" + (recv_all(s).decode().strip() if st == "200" else "")
def direct(host, port):
    try:
        socket.create_connection((host, port), 2).close()
        return "connected"
    except Exception as e:
        return "fail:" + type(e).__name__
def resolve(name):
    try:
        return ",".join(sorted({a[4][0] for a in socket.getaddrinfo(name, 80, socket.AF_INET)}))
    except socket.gaierror as e:
        return "gaierror"
`;
