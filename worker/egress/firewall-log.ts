// What a job network's firewall dropped (docs/sandbox.md, "Egress"): packets that tried to leave
// without the proxy (a direct TCP connection, UDP other than the resolver) are dropped in the
// kernel, and logged there first by an iptables LOG rule whose prefix names the job's bridge.
// This reads those records from the kernel log (/dev/kmsg, root as the firewall itself needs)
// and hands each flow, once, to the job network that owns the bridge, so that the job's
// connection log (and its digest in the signed result) carries the refusal and its reason.
import { closeSync, constants, openSync, readSync } from "node:fs";

/** The LOG rule's prefix for a bridge (iptables allows 29 characters; this is 20). */
export const logPrefix = (bridge: string) => `sigil:${bridge} `;

export interface DroppedFlow {
  protocol: "tcp" | "udp" | "other";
  source: string;
  sourcePort: number;
  destination: string;
  port: number;
  /** Wall-clock time of the first packet (ms since the epoch). */
  at: number;
}

const RECORD = /^\d+,\d+,(\d+),[^;]*;sigil:(sgj[0-9a-f]{10}) (.*)$/;
const field = (text: string, name: string) => new RegExp(`\\b${name}=(\\S*)`).exec(text)?.[1];

/** One kernel log record as the LOG rule writes it, or null for anything else. */
export function parseDropRecord(
  record: string,
  monotonicNowMs: number,
  wallNowMs: number,
): { bridge: string; flow: DroppedFlow } | null {
  const m = RECORD.exec(record.trimEnd());
  const [usec, bridge, text] = [m?.[1], m?.[2], m?.[3]];
  if (usec === undefined || bridge === undefined || text === undefined) return null;
  const proto = (field(text, "PROTO") ?? "").toLowerCase();
  const source = field(text, "SRC");
  const destination = field(text, "DST");
  if (!source || !destination) return null;
  return {
    bridge,
    flow: {
      protocol: proto === "tcp" || proto === "udp" ? proto : "other",
      source,
      sourcePort: Number(field(text, "SPT") ?? 0) || 0,
      destination,
      port: Number(field(text, "DPT") ?? 0) || 0,
      // The record's stamp is the kernel's monotonic clock in microseconds, as hrtime is.
      at: Math.round(wallNowMs - (monotonicNowMs - Number(usec) / 1000)),
    },
  };
}

type Sink = (flow: DroppedFlow) => void;

/**
 * The process's one reader of the kernel log: polls while any bridge is watched (non-blocking
 * reads, so no thread of the pool waits on it), and drains on demand at a job's end, when every
 * packet the job sent has been logged already (LOG writes in the packet's own path).
 */
export class KernelLog {
  private fd: number | null = null;
  private readonly sinks = new Map<string, Sink>();
  private timer: NodeJS.Timeout | null = null;
  private readonly buf = Buffer.alloc(8192);
  private warned = false;

  constructor(private readonly path = "/dev/kmsg") {}

  watch(bridge: string, sink: Sink): { drain(): void; stop(): void } {
    if (this.fd === null) {
      // From the ring's start: older records name no bridge watched now and are skipped. A log
      // that cannot be opened (no /dev/kmsg in this container) leaves the job as it is: the
      // drops are enforced all the same, only not itemised.
      try {
        this.fd = openSync(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
        this.timer = setInterval(() => this.drain(), 250);
        this.timer.unref();
      } catch (e) {
        this.warn(e);
      }
    }
    this.sinks.set(bridge, sink);
    return {
      drain: () => this.drain(),
      stop: () => {
        this.sinks.delete(bridge);
        if (this.sinks.size === 0) this.close();
      },
    };
  }

  /** Reads what is there; a failing kernel log never throws into the job (drops stay enforced). */
  private drain(): void {
    try {
      this.read();
    } catch (e) {
      this.warn(e);
    }
  }

  /** The drops are enforced whether or not they are logged; say once that they are not. */
  private warn(e: unknown): void {
    if (!this.warned)
      console.error(
        `sigil worker: reading ${this.path} failed (${(e as Error).message}): firewall drops are not itemised in job logs`,
      );
    this.warned = true;
  }

  private read(): void {
    if (this.fd === null) return;
    const mono = Number(process.hrtime.bigint() / 1000n) / 1000;
    const wall = Date.now();
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // EPIPE: records were overwritten before we read them; the next read goes on.
        if (code === "EPIPE") continue;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") return;
        throw e;
      }
      if (n <= 0) return;
      const parsed = parseDropRecord(this.buf.toString("utf8", 0, n), mono, wall);
      if (parsed) this.sinks.get(parsed.bridge)?.(parsed.flow);
    }
  }

  private close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

const kernelLog = new KernelLog();

/**
 * Watches a bridge's drops: `onFlow` is called once per flow (protocol, source and destination
 * address and port), however many packets it sent (a TCP SYN's retries, a burst of datagrams).
 */
export function watchDrops(
  bridge: string,
  onFlow: (flow: DroppedFlow) => void,
  log: KernelLog = kernelLog,
): { drain(): void; stop(): void } {
  const seen = new Set<string>();
  return log.watch(bridge, (f) => {
    const key = `${f.protocol} ${f.source}:${f.sourcePort} ${f.destination}:${f.port}`;
    if (seen.has(key)) return;
    seen.add(key);
    onFlow(f);
  });
}
