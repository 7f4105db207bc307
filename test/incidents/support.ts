// The incident store adapters every incidents test runs against (memory; Redis with Lua is added
// by the Redis adapter; the Durable Object under workerd).
import { type IncidentStore, MemoryIncidentStore } from "../../shared/incidents";

export function incidentStores(_name: string): {
  adapters: [string, () => Promise<IncidentStore>][];
  cleanup(): Promise<void>;
} {
  return {
    adapters: [["memory", async () => new MemoryIncidentStore()]],
    async cleanup() {},
  };
}
