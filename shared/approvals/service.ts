// The approval workflow over an ApprovalStore: open (or share) an approval, answer it, redeem it.
// Every transition goes through the pure functions of record.ts and lands with a compare-and-set,
// so each event below is reported exactly once, by the caller whose write won, whichever process
// that is. Expiry needs no timer: it is read off the stored timestamps, and the first caller to
// see it writes it down (and reports approval.expired).
import type { ApprovalStore, StoredApproval } from "./ports";
import {
  type ApprovalActor,
  type ApprovalRecord,
  type ApprovalStatus,
  type ApprovalTimes,
  type BoundRequest,
  bindingOf,
  decide,
  expire,
  newApproval,
  type RedeemRefusal,
  redeem,
  reusable,
  statusAt,
  type TransitionRefusal,
} from "./record";

export type ApprovalEventType =
  | "approval.requested"
  | "approval.approved"
  | "approval.denied"
  | "approval.expired"
  | "approval.redeemed";

export interface ApprovalEvent {
  type: ApprovalEventType;
  record: ApprovalRecord;
}

export interface ApprovalServiceOptions {
  store: ApprovalStore;
  times: ApprovalTimes;
  newId: () => string;
  now?: () => number;
  /** Called once per transition this process won; a rejection fails the call that caused it. */
  onEvent?: (e: ApprovalEvent) => Promise<void>;
}

export type DecideResult =
  | { ok: true; record: ApprovalRecord }
  | { ok: false; refusal: TransitionRefusal }
  | { ok: false; refusal: { code: "not-found"; detail: string } };

export type RedeemResult =
  | { ok: true; record: ApprovalRecord }
  | { ok: false; refusal: RedeemRefusal }
  | { ok: false; refusal: { code: "not-found"; detail: string } };

/** Tries a compare-and-set transition a few times against concurrent writers. */
const ATTEMPTS = 4;

export class ApprovalService {
  readonly #store: ApprovalStore;
  readonly #times: ApprovalTimes;
  readonly #newId: () => string;
  readonly #now: () => number;
  readonly #onEvent: (e: ApprovalEvent) => Promise<void>;

  constructor(opts: ApprovalServiceOptions) {
    this.#store = opts.store;
    this.#times = opts.times;
    this.#newId = opts.newId;
    this.#now = opts.now ?? Date.now;
    this.#onEvent = opts.onEvent ?? (async () => {});
  }

  get times(): ApprovalTimes {
    return this.#times;
  }

  /**
   * The approval for this bound request: the open one an identical request already has (pending,
   * or approved and not yet redeemed), else a new pending one.
   */
  async request(
    bound: BoundRequest,
    meta: { decisionId: string | null; policyReason: string | null },
  ): Promise<{ record: ApprovalRecord; created: boolean }> {
    const binding = bindingOf(bound);
    for (let i = 0; i < ATTEMPTS; i++) {
      const now = this.#now();
      const currentId = await this.#store.byBinding(binding);
      if (currentId !== undefined) {
        const cur = await this.#settled(currentId, now);
        if (cur && reusable(cur.record, now)) return { record: cur.record, created: false };
      }
      const record = newApproval(this.#newId(), bound, meta, now, this.#times);
      const r = await this.#store.create(record, currentId ?? null);
      if (r.created) {
        await this.#onEvent({ type: "approval.requested", record });
        return { record, created: true };
      }
      // Another request opened one at the same moment: look again (it is normally reusable).
    }
    throw new Error("approval store: too much contention on one request");
  }

  /** The record with any due expiry written down; undefined when unknown. */
  async get(id: string): Promise<ApprovalRecord | undefined> {
    return (await this.#settled(id, this.#now()))?.record;
  }

  /** Newest first; `next` is the cursor when the store may hold more. */
  async list(opts: {
    limit: number;
    before?: string;
    status?: ApprovalStatus;
    visible: (r: ApprovalRecord) => boolean;
  }): Promise<{ records: ApprovalRecord[]; next: string | null }> {
    const page = await this.#store.list({
      limit: opts.limit,
      ...(opts.before !== undefined ? { before: opts.before } : {}),
    });
    const now = this.#now();
    const records: ApprovalRecord[] = [];
    for (const s of page) {
      if (!opts.visible(s.record)) continue;
      const settled = (await this.#settle(s, now)).record;
      if (opts.status === undefined || statusAt(settled, now) === opts.status)
        records.push(settled);
    }
    const next = page.length === opts.limit ? page[page.length - 1]!.record.id : null;
    return { records, next };
  }

  /** The store's change feed (see ApprovalStore.changes). */
  changes(after: string, limit: number) {
    return this.#store.changes(after, limit);
  }

  changeCursor(): Promise<string> {
    return this.#store.changeCursor();
  }

  async decide(
    id: string,
    answer: { decision: "approve" | "deny"; reason: string },
    by: ApprovalActor & { groups: readonly string[] },
  ): Promise<DecideResult> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const now = this.#now();
      const cur = await this.#settled(id, now);
      if (!cur) return notFound(id);
      const t = decide(cur.record, answer, by, now, this.#times);
      if (!t.ok) return t;
      if (await this.#store.swap(id, cur.rev, t.next)) {
        await this.#onEvent({
          type: answer.decision === "approve" ? "approval.approved" : "approval.denied",
          record: t.next,
        });
        return { ok: true, record: t.next };
      }
      // Lost the race: the next round sees the winner's answer and refuses as already decided.
    }
    throw new Error("approval store: too much contention on one approval");
  }

  async redeem(id: string, bound: BoundRequest, decisionId: string | null): Promise<RedeemResult> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const now = this.#now();
      const cur = await this.#settled(id, now);
      if (!cur) return notFound(id);
      const t = redeem(cur.record, bound, decisionId, now);
      if (!t.ok) return t;
      if (await this.#store.swap(id, cur.rev, t.next)) {
        await this.#onEvent({ type: "approval.redeemed", record: t.next });
        return { ok: true, record: t.next };
      }
    }
    throw new Error("approval store: too much contention on one approval");
  }

  async #settled(id: string, now: number): Promise<StoredApproval | undefined> {
    const s = await this.#store.get(id);
    return s ? this.#settle(s, now) : undefined;
  }

  /** Writes down an expiry that is due; whoever wins the write reports it. */
  async #settle(s: StoredApproval, now: number): Promise<StoredApproval> {
    const next = expire(s.record, now);
    if (!next) return s;
    if (await this.#store.swap(s.record.id, s.rev, next)) {
      await this.#onEvent({ type: "approval.expired", record: next });
      return { rev: s.rev + 1, record: next };
    }
    return (await this.#store.get(s.record.id)) ?? { rev: s.rev, record: next };
  }
}

const notFound = (id: string) =>
  ({ ok: false, refusal: { code: "not-found", detail: `no approval ${id}` } }) as const;
