// The caches' invalidation bus on Redis pub/sub (shared/invalidation). A subscriber that
// (re)connects may have missed announcements, so every "ready" after the first resets the cache.
import type { Redis } from "ioredis";
import type { InvalidationBus } from "../../../shared/invalidation";

export function redisInvalidationBus(
  redis: Redis,
  channel: string,
): InvalidationBus & { close(): void } {
  const sub = redis.duplicate();
  let onId: (id: string) => void = () => {};
  let onReset: () => void = () => {};
  let readyOnce = false;
  sub.on("message", (ch: string, id: string) => {
    if (ch === channel) onId(id);
  });
  sub.on("ready", () => {
    if (readyOnce) onReset();
    readyOnce = true;
  });
  // Until the subscription is confirmed, announcements can be missed: reset when it is.
  void sub.subscribe(channel).then(
    () => onReset(),
    () => undefined,
  );
  sub.on("error", () => {}); // reconnects on its own; the TTL bounds what is missed meanwhile
  return {
    async publish(id) {
      await redis.publish(channel, id);
    },
    subscribe(i, r) {
      onId = i;
      onReset = r;
    },
    close() {
      sub.disconnect();
    },
  };
}
