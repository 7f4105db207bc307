// The key cache's invalidation bus on Redis pub/sub. A subscriber that (re)connects may have missed
// announcements, so every "ready" after the first resets the cache.
import type { Redis } from "ioredis";
import type { InvalidationBus } from "../../../shared/keys/cache";

export function redisInvalidationBus(
  redis: Redis,
  channel: string,
): InvalidationBus & { close(): void } {
  const sub = redis.duplicate();
  let onKid: (kid: string) => void = () => {};
  let onReset: () => void = () => {};
  let readyOnce = false;
  sub.on("message", (ch: string, kid: string) => {
    if (ch === channel) onKid(kid);
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
    async publish(kid) {
      await redis.publish(channel, kid);
    },
    subscribe(k, r) {
      onKid = k;
      onReset = r;
    },
    close() {
      sub.disconnect();
    },
  };
}
