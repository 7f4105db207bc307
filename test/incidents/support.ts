// The incident store adapters every incidents test runs against: memory, Redis (Lua) and the
// Durable Object under workerd.
import { RedisIncidentStore } from "../../functions/node/stores/incidents-redis";
import { type IncidentStore, MemoryIncidentStore } from "../../shared/incidents";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

export function incidentStores(name: string): {
  adapters: [string, () => Promise<IncidentStore>][];
  cleanup(): Promise<void>;
} {
  const redis = connectRedis();
  const prefix = testPrefix(name);
  let n = 0;
  const macKey = new Uint8Array(32).fill(5);
  return {
    adapters: [
      ["memory", async () => new MemoryIncidentStore()],
      ["redis", async () => new RedisIncidentStore(redis, `${prefix}${n++}:`, { macKey })],
      ["durable-object", async () => remotePort<IncidentStore>("incidents", freshName(name))],
    ],
    async cleanup() {
      await dropPrefix(redis, prefix);
      redis.disconnect();
      await disposeWorkerd();
    },
  };
}
