// A worker played by the test: takes jobs from the queue by hand, as a worker's BullMQ consumer
// does (worker/jobs/consumer.ts), so the test holds each job's lock token like the worker that took
// it and can report under any key with it. Nothing runs: no Docker.
import { randomUUID } from "node:crypto";
import { type Job, Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { queuePrefix } from "../../../platform/node/queue";
import { sha256Hex, utf8 } from "../../../shared/encoding";
import { envelopeHash, type SignedEnvelope } from "../../../shared/jobs";

/** The lock hash a worker reports for the queue lock token it holds (as the consumer does). */
export const lockHashOf = (token: string): string => sha256Hex(utf8(token));

/** One attempt of a job the taker holds the lock of. */
export interface Taken {
  jobId: string;
  attempt: number;
  lockHash: string;
  envelopeHash: string;
}

export interface QueueTaker {
  /** Takes the next job from the queue (which must be `jobId`), holding its lock. */
  take(jobId: string): Promise<Taken>;
  /** Closes the taker and empties the queue. */
  close(): Promise<void>;
}

export async function startQueueTaker(
  redis: Redis,
  prefix: string,
  queue: string,
): Promise<QueueTaker> {
  const taker = new Worker(queue, null, {
    connection: redis.duplicate({ maxRetriesPerRequest: null }),
    prefix: queuePrefix(prefix),
    lockDuration: 120_000,
    autorun: false,
  });
  await taker.waitUntilReady();
  return {
    async take(jobId) {
      const token = randomUUID();
      let job: Job<{ envelope: SignedEnvelope }> | undefined;
      for (let i = 0; i < 50 && !job; i++) job = await taker.getNextJob(token, { block: false });
      if (job?.id !== jobId) throw new Error(`took ${job?.id ?? "nothing"}, expected ${jobId}`);
      return {
        jobId,
        attempt: job.attemptsStarted,
        lockHash: lockHashOf(token),
        envelopeHash: envelopeHash(job.data.envelope.envelope),
      };
    },
    async close() {
      await taker.close(true);
      const q = new Queue(queue, { connection: redis, prefix: queuePrefix(prefix) });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    },
  };
}
