// An in-process InvalidationBus for cache tests; `drop` loses every announcement (a partitioned
// subscriber), `reset()` plays a subscriber reconnecting.
import type { InvalidationBus } from "../../shared/invalidation";

export function memoryBus() {
  const subs: { onId: (id: string) => void; onReset: () => void }[] = [];
  const bus = {
    drop: false,
    make(): InvalidationBus {
      return {
        publish: async (id) => {
          if (!bus.drop) for (const s of subs) s.onId(id);
        },
        subscribe: (onId, onReset) => {
          subs.push({ onId, onReset });
        },
      };
    },
    reset: () => {
      for (const s of subs) s.onReset();
    },
  };
  return bus;
}
