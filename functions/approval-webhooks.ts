// Approval webhooks (docs/governance.md "Approvals"): every new, answered, expired or redeemed
// approval is POSTed as JSON to each `[approvals] webhooks` URL, signed with the service key
// (RFC 9421: @method, @authority, @path, content-digest, created, nonce, tag "sigil-webhook"), so
// a receiver verifies it with the key published at /.well-known/sigil/keys. Each URL has its own
// bounded queue and one delivery at a time, retried with exponential backoff: a slow or dead
// receiver delays only its own deliveries, and publishing never waits for any of them (a full
// queue drops the event, logged). Approvals never depend on a delivery.
import type { Signer } from "../shared/crypto";
import { uuidV7 } from "../shared/crypto";
import { signRequest } from "../shared/httpsig";
import type { Logger } from "../shared/log";

export const WEBHOOK_TAG = "sigil-webhook";

/** An approval's event carries `approval`; incident response's (functions/incident-webhooks.ts) `incident`. */
export type WebhookEvent = { type: string } & (
  | { approval: unknown; incident?: never }
  | { incident: unknown; approval?: never }
);

export interface ApprovalWebhooksOptions {
  urls: readonly string[];
  signer: Signer;
  log: Logger;
  /** Attempts per delivery (the first included). */
  attempts: number;
  /** Deliveries waiting per URL at most; beyond it new events are dropped. */
  queueSize: number;
  /** Backoff before attempt n+1: base × 2^(n-1), at most maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Called when a delivery is given up after its last attempt (audited by the caller). */
  onGiveUp?: (url: string, body: Record<string, unknown>, lastError: string) => Promise<void>;
}

interface Delivery {
  body: string;
  parsed: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class Lane {
  readonly queue: Delivery[] = [];
  running: Promise<void> | null = null;
  constructor(readonly url: string) {}
}

export class ApprovalWebhooks {
  readonly #lanes: Lane[];
  readonly #o: Required<Omit<ApprovalWebhooksOptions, "onGiveUp">> &
    Pick<ApprovalWebhooksOptions, "onGiveUp">;

  constructor(o: ApprovalWebhooksOptions) {
    this.#o = {
      baseDelayMs: 250,
      maxDelayMs: 30_000,
      timeoutMs: 5_000,
      fetch: (input, init) => fetch(input, init),
      ...o,
    };
    this.#lanes = o.urls.map((u) => new Lane(u));
  }

  /** Queues the event for every URL; never waits. False when some queue was full (dropped). */
  publish(e: WebhookEvent): boolean {
    const { type, ...payload } = e;
    const parsed = { id: uuidV7(), type, at: new Date().toISOString(), ...payload };
    const body = JSON.stringify(parsed);
    let all = true;
    for (const lane of this.#lanes) {
      if (lane.queue.length >= this.#o.queueSize) {
        all = false;
        this.#o.log.error("approval webhook queue full: event dropped", {
          url: lane.url,
          type: e.type,
        });
        continue;
      }
      lane.queue.push({ body, parsed });
      lane.running ??= this.#run(lane);
    }
    return all;
  }

  /** Resolves when every queue is empty (what an edge request keeps alive with waitUntil). */
  async idle(): Promise<void> {
    while (this.#lanes.some((l) => l.running)) {
      await Promise.all(this.#lanes.map((l) => l.running));
    }
  }

  async #run(lane: Lane): Promise<void> {
    try {
      for (let d = lane.queue.shift(); d; d = lane.queue.shift()) await this.#deliver(lane.url, d);
    } finally {
      lane.running = null;
    }
  }

  async #deliver(url: string, d: Delivery): Promise<void> {
    let last = "";
    for (let attempt = 1; attempt <= this.#o.attempts; attempt++) {
      if (attempt > 1) {
        await sleep(Math.min(this.#o.maxDelayMs, this.#o.baseDelayMs * 2 ** (attempt - 2)));
      }
      try {
        const headers = new Headers({ "content-type": "application/json" });
        const sig = await signRequest(
          { method: "POST", url, headers, body: d.body },
          this.#o.signer,
          {
            keyid: this.#o.signer.kid,
            tag: WEBHOOK_TAG,
          },
        );
        for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
        const res = await this.#o.fetch(url, {
          method: "POST",
          headers,
          body: d.body,
          redirect: "manual",
          signal: AbortSignal.timeout(this.#o.timeoutMs),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) return;
        last = `HTTP ${res.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    this.#o.log.error("approval webhook delivery given up", {
      url,
      attempts: this.#o.attempts,
      last,
    });
    await this.#o.onGiveUp?.(url, d.parsed, last).catch(() => undefined);
  }
}
