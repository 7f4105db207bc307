// The per-job egress proxy (docs/sandbox.md, "Egress"): HTTP CONNECT and plain HTTP forwarding on
// Node's http/net, one instance per job, so every connection is the job's. It resolves names
// itself, connects only to addresses that pass the deny ranges and the job's signed rules, checks
// TLS SNI (CONNECT) and Host (plain HTTP) against the target name, rate- and byte-limits the job,
// and logs every connection, allowed or refused, with its reason.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { connect, isIP, type Socket } from "node:net";
import {
  type ConnectionLogEntry,
  checkDestination,
  type EgressRule,
  type EgressSettings,
  type EgressSummary,
  matchRule,
  summarizeConnectionLog,
} from "../../shared/jobs/egress";
import { TokenBucket } from "./rate";
import { ByteBudget, defaultRelayKind, type RelayKind, relayOf } from "./relay";
import { serverNameOf, TLS_HEAD_MAX } from "./sni";

export type { ConnectionLogEntry, EgressSummary };

export interface EgressLimits {
  connectionsPerSecond: number;
  maxBytes: number;
  maxConnections: number;
}

export interface JobProxyOptions {
  jobId: string;
  rules: readonly EgressRule[];
  settings: EgressSettings;
  limits: EgressLimits;
  /** This host's addresses, the proxy's and the resolver's, Redis': never destinations. */
  hostAddresses: readonly string[];
  /** Endpoints refused whatever the rules and exceptions say: the proxy, its resolver, Redis. */
  deniedEndpoints?: readonly { address: string; port: number }[];
  resolve: (name: string) => Promise<string[]>;
  /** Each entry as it is logged (refusals go to the audit trail from here). */
  onLog?: (e: ConnectionLogEntry) => void;
  connectTimeoutMs?: number;
  /** The tunnels' data plane (worker/egress/relay.ts); splice where the addon is built. */
  relay?: RelayKind;
}

const HEAD_TIMEOUT_MS = 5000;
const JOB_ENDED = "job ended";
/**
 * Refusals itemised per job and kind (docs/sandbox.md, "Egress"); the rest are counted in one
 * closing entry. A job past its connection or byte limit is refused without spending a rate
 * token, and firewall drops are limited only by the LOG rule's rate, so without this bound a job
 * that keeps trying would grow the worker's memory for as long as it runs.
 */
const MAX_ITEMISED_REFUSALS = 1024;

/** Refusals of one kind: how many, and whether the count is closed (its entry written). */
interface Tally {
  seen: number;
  closed: boolean;
}

/** p, or a rejection once signal aborts. */
const abortable = <T>(p: Promise<T>, signal: AbortSignal): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(new Error(JOB_ENDED));
    const onAbort = () => reject(new Error(JOB_ENDED));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
/** Bytes read from a destination at once (docs/benchmarks.md, "Egress proxy"). */
const UPSTREAM_READ = 128 * 1024;

/**
 * A destination socket's reads go straight into buffers of UPSTREAM_READ bytes (net's `onread`)
 * instead of Node's 64 KiB reads: the download path, the one a job's bulk transfers take, needs
 * fewer system calls per byte. Each read gets a buffer of its own (never reused: what was read
 * may still be queued for writing), as Node's own reads do.
 */
class UpstreamReads {
  /** Each chunk read; false pauses reading. Set by pipe() before reading starts. */
  sink: (chunk: Buffer) => boolean = () => false;
  readonly onread = {
    buffer: () => Buffer.allocUnsafe(UPSTREAM_READ),
    callback: (n: number, b: Uint8Array) => this.sink(Buffer.from(b.buffer, b.byteOffset, n)),
  };
}

interface Upstream {
  sock: Socket;
  reads: UpstreamReads;
}

export class JobProxy {
  readonly log: ConnectionLogEntry[] = [];
  private readonly server: Server;
  private readonly started = Date.now();
  private readonly connectionRate: TokenBucket;
  private readonly budget: ByteBudget;
  /** Firewall drops (`direct`) and the proxy's own refusals, each itemised up to the bound. */
  private readonly drops: Tally = { seen: 0, closed: false };
  private readonly refusals: Tally = { seen: 0, closed: false };
  private closed = false;
  private opened = 0;
  private readonly sockets = new Set<Socket>();
  /** Sockets whose request the http parser refused (logged once each). */
  private readonly refusedSockets = new WeakSet<Socket>();
  /** Open tunnels: stop() cuts one, `ended` resolves once its relay let go of the sockets. */
  private readonly tunnels = new Set<{ stop: () => void; ended: Promise<void> }>();
  /** CONNECTs between their request and their relay (admission, ClientHello, dial). */
  private readonly admitting = new Set<Promise<void>>();
  /** Aborted by close(): the job has ended, nothing more is admitted or dialled. */
  private readonly ending = new AbortController();
  /** The address the proxy listens on (set by listen()): its own control surface. */
  private address = "";

  constructor(private readonly o: JobProxyOptions) {
    this.connectionRate = new TokenBucket(o.limits.connectionsPerSecond);
    this.budget = new ByteBudget(o.limits.maxBytes);
    this.server = createServer({ requestTimeout: 30_000, headersTimeout: HEAD_TIMEOUT_MS });
    this.server.on("connect", (req: IncomingMessage, sock: Socket, head: Buffer) => {
      const p: Promise<void> = this.onConnect(req, sock, head).finally(() =>
        this.admitting.delete(p),
      );
      this.admitting.add(p);
    });
    this.server.on("request", (req, res) => {
      void this.onRequest(req, res);
    });
    // What the http parser refuses (bytes that are not an HTTP request: TLS sent straight to the
    // proxy, a head over Node's 16 KiB) or a head that never completes is a connection attempt
    // too: logged refused like any other (docs/sandbox.md, "Egress"). Other socket errors
    // (a reset) are not the job asking for anything.
    this.server.on("clientError", (err: Error & { code?: string }, sock: Socket) => {
      const code = err.code ?? "";
      const why =
        code === "HPE_HEADER_OVERFLOW"
          ? { status: "431 Request Header Fields Too Large", reason: "request head too large" }
          : code === "ERR_HTTP_REQUEST_TIMEOUT"
            ? { status: "408 Request Timeout", reason: "request head timed out" }
            : code.startsWith("HPE_")
              ? { status: "400 Bad Request", reason: "malformed request" }
              : undefined;
      // A socket is refused once: the parser may fail again on what follows the first error,
      // while the refusal is still being written.
      if (this.refusedSockets.has(sock)) return;
      if (why) {
        this.refusedSockets.add(sock);
        const now = Date.now();
        this.record(
          {
            kind: "http",
            host: "",
            port: 0,
            allowed: false,
            reason: why.reason,
            bytesUp: 0,
            bytesDown: 0,
          },
          now,
          0,
        );
        if (sock.writable)
          return sock.end(
            `HTTP/1.1 ${why.status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
          );
      }
      sock.destroy();
    });
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  listen(host: string, port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const a = this.server.address();
        if (typeof a === "object" && a) this.address = a.address;
        resolve(typeof a === "object" && a ? a.port : 0);
      });
    });
  }

  /** The relay tunnels use (the configured one, or the default for this build). */
  get relayKind(): RelayKind {
    return this.o.relay ?? defaultRelayKind;
  }

  async close(): Promise<void> {
    // No tunnel starts from here on (pipe() checks), so the set below is all there will be.
    this.ending.abort();
    // Tunnels first: a splice relay's thread uses the sockets' descriptors until it reports its
    // end, so they are closed only after that (never a descriptor number reused under it).
    const tunnels = [...this.tunnels];
    for (const t of tunnels) t.stop();
    await Promise.all(tunnels.map((t) => t.ended));
    // The rest are in admission: each ends refused ("job ended") and logged before close returns.
    for (const s of this.sockets) s.destroy();
    await Promise.all([...this.admitting]);
    await new Promise<void>((r) => this.server.close(() => r()));
    this.closeTally(this.refusals, "connect", "refused connections");
    // The log is final from here (its digest is signed): nothing more joins it.
    this.closed = true;
  }

  /**
   * A flow the job network's firewall dropped (worker/egress/firewall-log.ts): the job tried to
   * leave without the proxy. Logged refused like any other, with no byte through.
   */
  recordDrop(f: { protocol: string; destination: string; port: number; at: number }): void {
    const reason =
      f.protocol === "udp"
        ? "UDP other than the job's resolver (dropped by the job network's firewall)"
        : `direct ${f.protocol === "tcp" ? "TCP connection" : "packet"}, not through the proxy (dropped by the job network's firewall)`;
    this.record(
      {
        kind: "direct",
        host: f.destination,
        port: f.port,
        address: f.destination,
        allowed: false,
        reason,
        bytesUp: 0,
        bytesDown: 0,
      },
      Math.max(this.started, Math.min(f.at, Date.now())),
      0,
    );
  }

  /** Closes the drops' account: after it, the log is being signed and no drop joins it. */
  endDrops(): void {
    this.closeTally(this.drops, "direct", "flows dropped by the job network's firewall");
  }

  /** One entry counting a kind's refusals beyond the bound, if any; later ones are ignored. */
  private closeTally(t: Tally, kind: ConnectionLogEntry["kind"], what: string): void {
    if (t.closed) return;
    const more = t.seen - MAX_ITEMISED_REFUSALS;
    t.closed = true;
    if (more > 0)
      this.push({
        kind,
        host: "",
        port: 0,
        allowed: false,
        reason: `${more} more ${what}, not itemised`,
        bytesUp: 0,
        bytesDown: 0,
        at: Date.now() - this.started,
        durationMs: 0,
      });
  }

  summary(): EgressSummary {
    return summarizeConnectionLog(this.log);
  }

  private record(
    e: Omit<ConnectionLogEntry, "at" | "durationMs">,
    start: number,
    durationMs = Date.now() - start,
  ) {
    if (!e.allowed) {
      const t = e.kind === "direct" ? this.drops : this.refusals;
      if (t.closed || t.seen++ >= MAX_ITEMISED_REFUSALS) return;
    }
    this.push({ ...e, at: start - this.started, durationMs });
  }

  private push(entry: ConnectionLogEntry) {
    if (this.closed) return;
    this.log.push(entry);
    this.o.onLog?.(entry);
  }

  /**
   * The checks before any byte reaches a destination: limits, a rule naming host:port, the
   * proxy's own resolution, and the deny ranges for the address connected to.
   */
  private async admit(
    host: string,
    port: number,
  ): Promise<{ ok: true; address: string } | { ok: false; reason: string; address?: string }> {
    if (this.ending.signal.aborted) return { ok: false, reason: JOB_ENDED };
    if (this.opened >= this.o.limits.maxConnections)
      return { ok: false, reason: "connection limit reached" };
    if (this.budget.spent) return { ok: false, reason: "byte limit reached" };
    if (!this.connectionRate.take())
      return { ok: false, reason: "rate limit: too many connections per second" };
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return { ok: false, reason: "bad port" };
    // The proxy's own address (the job network's gateway, where its resolver listens too), by IP
    // or by a name resolving to it: its own reason, ahead of the rule match (docs/sandbox.md).
    if (isIP(host) && this.isSelf(host))
      return { ok: false, reason: "proxy address", address: host };
    const rule = matchRule(this.o.rules, host, port);
    if (!rule)
      return {
        ok: false,
        reason: isIP(host)
          ? "IP address not covered by a cidr rule"
          : "name and port not on the job's allow-list",
      };
    let addresses: string[];
    if (isIP(host)) addresses = [host];
    else {
      try {
        addresses = await abortable(this.o.resolve(host), this.ending.signal);
      } catch {
        if (this.ending.signal.aborted) return { ok: false, reason: JOB_ENDED };
        return { ok: false, reason: "resolution failed" };
      }
      if (addresses.length === 0) return { ok: false, reason: "NXDOMAIN" };
    }
    // Every answer must pass: a name that also resolves somewhere denied is a rebinding attempt.
    for (const a of addresses) {
      if (this.isSelf(a)) return { ok: false, reason: "proxy address", address: a };
      if (this.o.deniedEndpoints?.some((d) => d.port === port && sameAddress(d.address, a)))
        return {
          ok: false,
          reason: `${a}:${port} is the proxy, its resolver or Redis`,
          address: a,
        };
      const v = checkDestination(a, port, this.o.settings, this.o.hostAddresses);
      if (!v.ok)
        return { ok: false, reason: `resolved address refused: ${v.reason}`, address: v.address };
    }
    this.opened++;
    return { ok: true, address: addresses[0]! };
  }

  private isSelf(a: string): boolean {
    return this.address !== "" && sameAddress(a, this.address);
  }

  private dial(address: string, port: number): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const reads = new UpstreamReads();
      // No Nagle towards the destination: the proxy forwards what the job wrote as it arrives;
      // holding a small write (a TLS Finished, a request) until the previous one is acknowledged
      // would add the server's delayed-ACK time to the job's round trips. The job's side has
      // none already (node:http servers set noDelay).
      // Half-open: a destination that ends its side (its reply done) may still read the job's
      // bytes; each end is passed on as an end (pipe() below), the tunnel closes when both are.
      const s = connect({
        host: address,
        port,
        noDelay: true,
        allowHalfOpen: true,
        onread: reads.onread,
      });
      // No reads before the relay is in place (pipe() resumes it).
      s.pause();
      const ended = () => {
        clearTimeout(t);
        s.destroy();
        reject(new Error(JOB_ENDED));
      };
      this.ending.signal.addEventListener("abort", ended, { once: true });
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error("connect timed out"));
      }, this.o.connectTimeoutMs ?? 5000);
      s.once("connect", () => {
        this.ending.signal.removeEventListener("abort", ended);
        clearTimeout(t);
        resolve({ sock: s, reads });
      });
      s.once("error", (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  private async onConnect(req: IncomingMessage, client: Socket, head: Buffer) {
    const start = Date.now();
    // The http server hands the socket over without its error handler; a job that resets the
    // connection (as python does closing a refused TLS tunnel) must not crash the worker.
    client.on("error", () => client.destroy());
    const target = parseAuthority(req.url ?? "");
    const refuse = (
      reason: string,
      host = target?.host ?? "",
      port = target?.port ?? 0,
      address?: string,
    ) => {
      this.record(
        {
          kind: "connect",
          host,
          port,
          allowed: false,
          reason,
          bytesUp: 0,
          bytesDown: 0,
          ...(address ? { address } : {}),
        },
        start,
      );
      if (!client.destroyed)
        client.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    };
    if (!target) return refuse("malformed CONNECT target");
    const v = await this.admit(target.host, target.port);
    if (!v.ok) return refuse(v.reason, target.host, target.port, v.address);
    // A name target: the first bytes must be a TLS ClientHello naming the same host (no domain
    // fronting) before anything is connected or forwarded.
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    let first = head;
    if (!isIP(target.host)) {
      first = await readHead(client, head);
      if (this.ending.signal.aborted) return refuse(JOB_ENDED, target.host, target.port, v.address);
      const sni = serverNameOf(first);
      if (sni.kind !== "ok")
        return refuse(
          `TLS ClientHello ${sni.kind === "none" ? "without SNI" : "unreadable"}`,
          target.host,
          target.port,
          v.address,
        );
      if (sni.name !== target.host)
        return refuse(
          `SNI ${sni.name} differs from the CONNECT target`,
          target.host,
          target.port,
          v.address,
        );
    }
    let upstream: Upstream;
    try {
      upstream = await this.dial(v.address, target.port);
    } catch (e) {
      const why = this.ending.signal.aborted
        ? JOB_ENDED
        : `connect failed: ${(e as Error).message}`;
      return refuse(why, target.host, target.port, v.address);
    }
    this.pipe(
      client,
      upstream,
      first,
      { kind: "connect", host: target.host, port: target.port, address: v.address },
      start,
    );
  }

  private pipe(
    client: Socket,
    { sock: upstream, reads }: Upstream,
    first: Buffer,
    who: { kind: "connect" | "http"; host: string; port: number; address: string },
    start: number,
  ) {
    // The job ended while this one was being admitted: nothing is relayed (and no relay may
    // start once close() has collected the tunnels).
    if (this.ending.signal.aborted || client.destroyed) {
      client.destroy();
      upstream.destroy();
      this.record({ ...who, allowed: false, reason: JOB_ENDED, bytesUp: 0, bytesDown: 0 }, start);
      return;
    }
    // What readHead() took (the ClientHello) or the CONNECT's head goes first, counted.
    let firstUp = 0;
    if (first.length > 0) {
      if (!this.budget.spend(first.length)) {
        client.destroy();
        upstream.destroy();
        this.record(
          { ...who, allowed: true, bytesUp: 0, bytesDown: 0, reason: "byte limit reached" },
          start,
        );
        return;
      }
      firstUp = first.length;
      upstream.write(first);
    }
    let release = () => {};
    const ended = new Promise<void>((r) => {
      release = r;
    });
    const tunnel = { stop: () => {}, ended };
    this.tunnels.add(tunnel);
    tunnel.stop = relayOf(this.relayKind)(
      {
        client,
        upstream,
        setUpstreamSink: (sink) => {
          reads.sink = sink;
        },
      },
      this.budget,
      (r) => {
        this.tunnels.delete(tunnel);
        release();
        this.record(
          {
            ...who,
            allowed: true,
            bytesUp: firstUp + r.up,
            bytesDown: r.down,
            ...(r.reason ? { reason: r.reason } : {}),
          },
          start,
        );
      },
    );
  }

  /** Plain HTTP forward proxying: absolute-form URL, the Host header must name the same host. */
  private async onRequest(req: IncomingMessage, res: import("node:http").ServerResponse) {
    const start = Date.now();
    let url: URL;
    try {
      url = new URL(req.url ?? "");
    } catch {
      url = new URL("invalid://");
    }
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const port = url.port === "" ? 80 : Number(url.port);
    const refuse = (reason: string, address?: string) => {
      this.record(
        {
          kind: "http",
          host,
          port,
          allowed: false,
          reason,
          bytesUp: 0,
          bytesDown: 0,
          ...(address ? { address } : {}),
        },
        start,
      );
      res
        .writeHead(403, { "content-type": "text/plain", connection: "close" })
        .end(`refused: ${reason}\n`);
    };
    if (url.protocol !== "http:")
      return refuse("only http:// URLs are forwarded (https goes through CONNECT)");
    const hostHeader = (req.headers.host ?? "")
      .toLowerCase()
      .replace(/:\d+$/, "")
      .replace(/^\[|\]$/g, "");
    if (hostHeader !== host)
      return refuse(`Host ${hostHeader.slice(0, 64)} differs from the request target`);
    const v = await this.admit(host, port);
    if (!v.ok) return refuse(v.reason, v.address);
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    let up = 0;
    let down = 0;
    const upstream = httpRequest({
      host: v.address,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, connection: "close" },
      timeout: this.o.connectTimeoutMs ?? 5000,
    });
    let failed: string | undefined;
    upstream.on("response", (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.on("data", (d: Buffer) => {
        down += d.length;
        if (!this.budget.spend(d.length)) {
          failed = "byte limit reached";
          r.destroy();
          res.destroy();
          return;
        }
        res.write(d);
      });
      r.on("end", () => res.end());
      r.on("close", () => {
        this.record(
          {
            kind: "http",
            host,
            port,
            address: v.address,
            allowed: true,
            bytesUp: up,
            bytesDown: down,
            ...(failed ? { reason: failed } : {}),
          },
          start,
        );
      });
    });
    upstream.on("error", (e) => {
      if (res.headersSent) res.destroy();
      else refuse(`connect failed: ${e.message}`, v.address);
    });
    req.on("data", (d: Buffer) => {
      up += d.length;
      if (!this.budget.spend(d.length)) {
        failed = "byte limit reached";
        upstream.destroy();
        res.destroy();
        return;
      }
      upstream.write(d);
    });
    req.on("end", () => upstream.end());
  }
}

const sameAddress = (a: string, b: string): boolean => {
  const norm = (x: string) => x.toLowerCase().replace(/^::ffff:/, "");
  return norm(a) === norm(b);
};

/** `host:port` or `[v6]:port` of a CONNECT request; names lower-cased. */
export function parseAuthority(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, ""), port };
}

/** Reads until a whole TLS record header + body (or TLS_HEAD_MAX bytes, or a timeout). */
function readHead(sock: Socket, head: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    let buf = head;
    // Not a TLS handshake record: decided at the first byte.
    const enough = () =>
      buf.length >= TLS_HEAD_MAX ||
      (buf.length >= 1 && buf[0] !== 0x16) ||
      (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3));
    if (enough()) return resolve(buf);
    const t = setTimeout(() => done(), HEAD_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (enough()) done();
    };
    const done = () => {
      clearTimeout(t);
      sock.off("data", onData);
      sock.off("close", done);
      sock.pause();
      resolve(buf);
    };
    sock.on("data", onData);
    sock.on("close", done);
  });
}
