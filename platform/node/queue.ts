// The sandbox job queue as both of its ends see it: the BullMQ queue name, its key prefix and the
// payload. The producer (functions/node/jobs/redis-backend.ts) and the consumer
// (worker/jobs/consumer.ts) take them from here, so the two cannot drift apart.
import type { SigilConfig } from "../../shared/config";
import type { SignedEnvelope } from "../../shared/jobs/envelope";

/** BullMQ's key prefix for `[redis] prefix`: a hash tag, so a queue's keys share one cluster slot. */
export const queuePrefix = (prefix: string): string => `{${prefix}}`;

export interface JobQueue {
  /** `[sandbox] queue` ("sigil-jobs"). */
  name: string;
  /** BullMQ's prefix, `queuePrefix([redis] prefix)` ("{sigil}"). */
  prefix: string;
}

export const jobQueue = (config: Pick<SigilConfig, "redis" | "sandbox">): JobQueue => ({
  name: config.sandbox.queue,
  prefix: queuePrefix(config.redis.prefix),
});

/** Queue job payload: only the signed envelope; everything else the worker must distrust. */
export interface QueuedJob {
  envelope: SignedEnvelope;
}

/** The payload as the consumer reads it: Redis is not trusted, so nothing is known before the
 * envelope verifies. */
export type UntrustedQueuedJob = { [K in keyof QueuedJob]?: unknown };
