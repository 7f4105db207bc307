// Repeated security events, aggregated (docs/governance.md "Quotas"): a flood of junk must not cost
// a signed, fsynced audit event per request. Per key (a source and a reason) the first occurrence
// is written at once, as before, so a first failure is visible immediately; the rest of the window
// is counted in memory and written as one summary event when the window closes, with the count and
// the first request ids. So each key costs at most two events per window, and at most `maxOpen`
// keys of one event type are tracked at once: occurrences of further keys fold into that type's
// overflow window (summary only), which bounds the events per window whatever an attacker varies.
//
// State is per process (per isolate on the edge): N API processes write at most N times as many
// events. A window is flushed when it closes (the caller schedules flushLater(), kept alive on
// the edge with waitUntil) and by close() at shutdown, so a stop loses nothing; a crash or an
// evicted isolate loses at most one window's count (its first occurrence is already written).
import type { AuditInput } from "./audit-sink";

export interface Occurrence {
  /** What is counted together, e.g. source and reason. */
  key: string;
  requestId: string;
  /** The event written for the first occurrence of a window (gets count 1). */
  first: AuditInput;
  /** The window's summary event, before the count, request ids and window bounds are added. */
  summary: AuditInput;
}

export interface AuditWindowsOptions {
  windowMs: number;
  append: (e: AuditInput) => Promise<unknown>;
  /** Keys of one event type tracked at once; more fold into its overflow window. Default 64. */
  maxOpen?: number;
  /** Request ids a summary names. Default 10. */
  maxIds?: number;
  now?: () => number;
  /** A summary that could not be written (its count is lost; the first occurrence was not). */
  onError?: (e: unknown) => void;
}

interface Window {
  opened: number;
  closes: number;
  /** Occurrences after the first (all of them, for an overflow window). */
  count: number;
  requestIds: string[];
  summary: AuditInput;
  /** Overflow windows: the distinct keys folded in (counted up to a bound). */
  keys?: Set<string>;
}

const OVERFLOW = "\u0000overflow\u0000";
const MAX_COUNTED_KEYS = 1000;

export class AuditWindows {
  readonly #open = new Map<string, Window>();
  readonly #openByType = new Map<string, number>();
  readonly #o: Required<Omit<AuditWindowsOptions, "onError">> &
    Pick<AuditWindowsOptions, "onError">;
  readonly #pending = new Set<Promise<void>>();

  constructor(o: AuditWindowsOptions) {
    if (!(o.windowMs > 0)) throw new RangeError("windowMs must be > 0");
    this.#o = { maxOpen: 64, maxIds: 10, now: Date.now, ...o };
  }

  get windowMs(): number {
    return this.#o.windowMs;
  }

  /**
   * Counts an occurrence. Returns the append of the window's first event when this occurrence
   * opens a window (await it: it is the occurrence's own record), else undefined: counted only.
   */
  record(o: Occurrence): Promise<void> | undefined {
    const now = this.#o.now();
    const open = this.#open.get(o.key);
    if (open && open.closes > now) {
      this.#count(open, o.requestId);
      return undefined;
    }
    if (open) this.#close(o.key, open);
    if ((this.#openByType.get(o.first.eventType) ?? 0) >= this.#o.maxOpen) {
      const key = `${OVERFLOW}${o.first.eventType}`;
      let w = this.#open.get(key);
      if (w && w.closes <= now) {
        this.#close(key, w);
        w = undefined;
      }
      if (!w) {
        w = this.#window(now, {
          eventType: o.first.eventType,
          agentId: "anonymous",
          details: { source: "(overflow)", overflow: true },
        });
        w.keys = new Set();
        this.#open.set(key, w); // not counted against maxOpen: one per event type
      }
      if (w.keys!.size < MAX_COUNTED_KEYS) w.keys!.add(o.key);
      this.#count(w, o.requestId);
      return undefined;
    }
    this.#open.set(o.key, this.#window(now, o.summary));
    this.#track(o.summary.eventType, 1);
    return this.#o.append({ ...o.first, details: { ...o.first.details, count: 1 } }).then(
      () => undefined,
      (e: unknown) => {
        // Unrecorded: let the next occurrence try to be the first again.
        const w = this.#open.get(o.key);
        if (w && w.count === 0 && this.#open.delete(o.key)) this.#track(w.summary.eventType, -1);
        throw e;
      },
    );
  }

  /** Waits until windows opened now have closed, then writes their summaries. */
  flushLater(): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.#o.windowMs + 5);
      // Node: a pending summary must not keep the process alive (close() flushes it).
      (t as { unref?: () => void }).unref?.();
    }).then(() => this.flushDue());
  }

  /** Is a window past its end (a summary to write)? Cheap: few windows are ever open. */
  hasDue(): boolean {
    const now = this.#o.now();
    for (const w of this.#open.values()) if (w.closes <= now && w.count > 0) return true;
    return false;
  }

  /** Writes the summaries of the windows that have closed. */
  async flushDue(): Promise<void> {
    const now = this.#o.now();
    for (const [key, w] of this.#open) if (w.closes <= now) this.#close(key, w);
    await this.#settled();
  }

  /** Shutdown: closes every window now and waits for the summaries to be written. */
  async close(): Promise<void> {
    for (const [key, w] of this.#open) this.#close(key, w);
    await this.#settled();
  }

  #window(now: number, summary: AuditInput): Window {
    return { opened: now, closes: now + this.#o.windowMs, count: 0, requestIds: [], summary };
  }

  #count(w: Window, requestId: string): void {
    w.count++;
    if (w.requestIds.length < this.#o.maxIds) w.requestIds.push(requestId);
  }

  #track(eventType: string, by: number): void {
    const n = (this.#openByType.get(eventType) ?? 0) + by;
    if (n > 0) this.#openByType.set(eventType, n);
    else this.#openByType.delete(eventType);
  }

  #close(key: string, w: Window): void {
    this.#open.delete(key);
    if (!w.keys) this.#track(w.summary.eventType, -1);
    if (w.count === 0) return;
    const p = this.#o
      .append({
        ...w.summary,
        details: {
          ...w.summary.details,
          count: w.count,
          requestIds: w.requestIds,
          ...(w.keys ? { sources: w.keys.size } : {}),
          windowStart: new Date(w.opened).toISOString(),
          windowEnd: new Date(w.closes).toISOString(),
          aggregated: true,
        },
      })
      .then(
        () => undefined,
        (e: unknown) => this.#o.onError?.(e),
      );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  async #settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }
}
