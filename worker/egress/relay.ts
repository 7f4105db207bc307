// The data plane of an admitted tunnel (docs/sandbox.md, "Egress", data path): moves bytes both
// ways between the job's socket and the destination's, counted against the job's byte budget,
// each end passed on as an end. Two implementations with the same contract: `splice` (the
// native addon in ./native, bytes socket -> pipe -> socket in a thread of its own, never copied
// into the process) and `js` (Node streams), used where the addon is not built.
import { createRequire } from "node:module";
import type { Socket } from "node:net";

/**
 * The job's bytes so far, both directions, all its tunnels, in shared memory so that the
 * addon's threads and JavaScript count in the same cell (atomically).
 */
export class ByteBudget {
  private readonly cell = new BigInt64Array(new SharedArrayBuffer(8));
  constructor(readonly limit: number) {}
  get used(): number {
    return Number(Atomics.load(this.cell, 0));
  }
  get spent(): boolean {
    return this.used >= this.limit;
  }
  /** Counts n bytes; false when the job is then over its limit (the caller cuts the tunnel). */
  spend(n: number): boolean {
    return Number(Atomics.add(this.cell, 0, BigInt(n))) + n <= this.limit;
  }
  /** For the addon: [0] is the count. */
  get shared(): BigInt64Array {
    return this.cell;
  }
}

export interface TunnelResult {
  up: number;
  down: number;
  /** Why the tunnel was cut, when it was not its ends that closed it. */
  reason?: string;
}

export interface Tunnel {
  client: Socket;
  upstream: Socket;
  /**
   * The upstream socket's reads for the js relay (created with net's `onread`): each chunk,
   * false pausing. Unused by splice, which never reads in JavaScript.
   */
  setUpstreamSink(sink: (chunk: Buffer) => boolean): void;
}

export type RelayKind = "splice" | "js";

/** Starts relaying; `done` is called once. Returns stop(): cut the tunnel (done still follows). */
export type Relay = (t: Tunnel, budget: ByteBudget, done: (r: TunnelResult) => void) => () => void;

const LIMIT = "byte limit reached";

/**
 * Node streams: each direction counts (the limit checked before a chunk is written on), then
 * writes, its source paused while the destination's buffer is full.
 */
export const jsRelay: Relay = ({ client, upstream, setUpstreamSink }, budget, done) => {
  let up = 0;
  let down = 0;
  let reason: string | undefined;
  const cut = () => {
    reason = LIMIT;
    client.destroy();
    upstream.destroy();
  };
  const relay = (d: Buffer, src: Socket, dst: Socket): boolean => {
    if (dst.write(d)) return true;
    src.pause();
    dst.once("drain", () => src.resume());
    return false;
  };
  client.on("data", (d: Buffer) => {
    if (!budget.spend(d.length)) return cut();
    up += d.length;
    relay(d, client, upstream);
  });
  setUpstreamSink((d) => {
    if (!budget.spend(d.length)) {
      cut();
      return false;
    }
    down += d.length;
    return relay(d, upstream, client);
  });
  client.once("end", () => upstream.end());
  upstream.once("end", () => client.end());
  client.resume();
  upstream.resume();
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
    done({ up, down, ...(reason ? { reason } : {}) });
  };
  for (const s of [client, upstream]) {
    s.on("close", finish);
    s.on("error", finish);
  }
  return () => {
    client.destroy();
    upstream.destroy();
  };
};

interface Addon {
  relay(
    clientFd: number,
    upstreamFd: number,
    budget: BigInt64Array,
    limit: number,
    done: (r: { end: "eof" | "limit" | "stopped" | "error"; up: number; down: number }) => void,
  ): () => void;
}

function loadAddon(): Addon | null {
  if (process.platform !== "linux") return null;
  try {
    return createRequire(import.meta.url)("./native/build/Release/sigil_relay.node") as Addon;
  } catch {
    return null;
  }
}

const addon = loadAddon();

/** The libuv handle's descriptor (net sockets on Unix expose it; -1 when closed). */
const fdOf = (s: Socket): number =>
  (s as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;

/**
 * Takes a socket's reading away from Node: whatever its stream has buffered is returned and its
 * handle stops reading, so every later byte is the addon's. read() may restart the handle's
 * reading, but no I/O runs before the readStop that follows in the same tick.
 */
function takeReads(s: Socket): Buffer {
  const chunks: Buffer[] = [];
  for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) chunks.push(c);
  (s as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
  return Buffer.concat(chunks);
}

/** Resolves once everything written to s so far is with the kernel (false: s failed first). */
const flushed = (s: Socket): Promise<boolean> =>
  new Promise((resolve) => {
    if (s.destroyed) return resolve(false);
    s.write(Buffer.alloc(0), (e) => resolve(!e && !s.destroyed));
  });

/**
 * splice(2) in a thread per tunnel (./native/relay.c). The sockets stay Node's objects, so the
 * descriptors are closed by Node, once: only after the addon has reported the end.
 */
export const spliceRelay: Relay = ({ client, upstream }, budget, done) => {
  if (!addon) throw new Error("the splice relay is not built (worker/egress/native)");
  const a = addon;
  let stopNative: (() => void) | null = null;
  let stopped = false;
  let finished = false;
  const finish = (r: TunnelResult) => {
    if (finished) return;
    finished = true;
    client.destroy();
    upstream.destroy();
    done(r);
  };
  // Errors before the hand-over end the tunnel; after it the addon sees them itself.
  const early = () => finish({ up: 0, down: 0 });
  client.once("error", early);
  upstream.once("error", early);
  const fromClient = takeReads(client);
  takeReads(upstream);
  let up = 0;
  if (fromClient.length > 0) {
    if (!budget.spend(fromClient.length)) {
      finish({ up: 0, down: 0, reason: LIMIT });
      return () => {};
    }
    up = fromClient.length;
    upstream.write(fromClient);
  }
  void Promise.all([flushed(client), flushed(upstream)]).then(([c, u]) => {
    if (finished) return;
    const cfd = fdOf(client);
    const ufd = fdOf(upstream);
    if (stopped || !c || !u || cfd < 0 || ufd < 0) return finish({ up, down: 0 });
    client.off("error", early);
    upstream.off("error", early);
    try {
      stopNative = a.relay(cfd, ufd, budget.shared, budget.limit, (r) => {
        finish({
          up: up + r.up,
          down: r.down,
          ...(r.end === "limit" ? { reason: LIMIT } : {}),
        });
      });
    } catch (e) {
      // No thread or pipe (resources exhausted): the tunnel ends, logged with why.
      finish({ up, down: 0, reason: `relay failed: ${(e as Error).message}` });
    }
  });
  return () => {
    stopped = true;
    if (stopNative) stopNative();
    else if (!finished) finish({ up, down: 0 });
  };
};

/** The relay a proxy uses when not told: splice where the addon is built, else js. */
export const defaultRelayKind: RelayKind = addon ? "splice" : "js";

export function relayOf(kind: RelayKind): Relay {
  return kind === "splice" ? spliceRelay : jsRelay;
}

/**
 * Why the configured relay cannot run in this build, or null (`[network] relay`): `splice`
 * asked for where the addon is not built is refused at the worker's start, not met with the
 * slower relay in silence.
 */
export function relayProblem(
  requested: "auto" | RelayKind,
  built: RelayKind = defaultRelayKind,
): string | null {
  if (requested !== "splice" || built === "splice") return null;
  return "[network] relay is splice but the addon is not built (npm ci builds worker/egress/native with node-gyp: needs make, a C compiler and Node's headers)";
}
