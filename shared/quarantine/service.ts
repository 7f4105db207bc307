// The quarantine service (docs/incidents.md "Quarantine"): incident response and admins place
// and lift quarantines through it; request authentication asks it whether a key or subject is
// isolated. Each place and lift is decided once by the store, and only the caller whose write won
// reports it (audit `quarantine.placed` / `quarantine.lifted`) and runs its consequences, so two
// processes mitigating the same incident isolate, audit and cancel once.
import type { QuarantineStore } from "./ports";
import { QuarantineTargetSchema } from "./record";
import type { Isolation, PlaceQuarantine, QuarantineRecord, QuarantineTarget } from "./types";

export type QuarantineEventType = "quarantine.placed" | "quarantine.lifted";

export interface QuarantineEvent {
  type: QuarantineEventType;
  record: QuarantineRecord;
}

export interface QuarantineServiceOptions {
  store: QuarantineStore;
  newId: () => string;
  now?: () => number;
  /** Audits each place and lift this process won; a rejection fails the call that caused it. */
  onEvent: (e: QuarantineEvent) => Promise<void>;
  /**
   * What a new quarantine does beyond refusing requests (cancel a subject's jobs, re-queue a
   * worker's): run once, by the process whose place won, after the event is audited.
   */
  onPlaced?: (r: QuarantineRecord) => Promise<void>;
  /** What a lift undoes (a worker's suspended key); never a revocation. */
  onLifted?: (r: QuarantineRecord) => Promise<void>;
}

export type LiftResult =
  | { ok: true; lifted: boolean; record: QuarantineRecord }
  | { ok: false; code: "not-found" };

export class QuarantineService implements Isolation {
  readonly #o: QuarantineServiceOptions;
  readonly #now: () => number;

  constructor(o: QuarantineServiceOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get store(): QuarantineStore {
    return this.#o.store;
  }

  async place(input: PlaceQuarantine): Promise<QuarantineRecord> {
    return (await this.placeOutcome(input)).record;
  }

  /** `place`, also saying whether this call placed it (false: one was already in force). */
  async placeOutcome(
    input: PlaceQuarantine,
  ): Promise<{ placed: boolean; record: QuarantineRecord }> {
    const target = QuarantineTargetSchema.parse(input.target);
    const record: QuarantineRecord = {
      id: this.#o.newId(),
      target,
      reason: input.reason,
      ...(input.incidentId !== undefined ? { incidentId: input.incidentId } : {}),
      placedBy: input.by,
      placedAt: new Date(this.#now()).toISOString(),
    };
    const out = await this.#o.store.place(record);
    if (out.placed) {
      await this.#o.onEvent({ type: "quarantine.placed", record: out.record });
      await this.#o.onPlaced?.(out.record);
    }
    return out;
  }

  async lift(id: string, by: string, reason: string): Promise<LiftResult> {
    const at = new Date(this.#now()).toISOString();
    const out = await this.#o.store.lift(id, { by, at, reason });
    if (!out) return { ok: false, code: "not-found" };
    if (out.lifted) {
      await this.#o.onEvent({ type: "quarantine.lifted", record: out.record });
      await this.#o.onLifted?.(out.record);
    }
    return { ok: true, ...out };
  }

  /** The quarantine in force on this key or its subject (the key's first), if any. */
  async forRequest(who: {
    kid: string;
    subject: string | null;
  }): Promise<QuarantineRecord | undefined> {
    // Both at once: on the edge each is a Durable Object round trip on every signed request.
    const [byKey, bySubject] = await Promise.all([
      this.#o.store.active({ kind: "key", kid: who.kid }),
      who.subject === null
        ? undefined
        : this.#o.store.active({ kind: "subject", subject: who.subject }),
    ]);
    return byKey ?? bySubject;
  }

  active(target: QuarantineTarget): Promise<QuarantineRecord | undefined> {
    return this.#o.store.active(target);
  }

  get(id: string): Promise<QuarantineRecord | undefined> {
    return this.#o.store.get(id);
  }

  list(opts: { limit: number; before?: string }): Promise<QuarantineRecord[]> {
    return this.#o.store.list(opts);
  }
}
