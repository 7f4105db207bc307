// The quarantine service as the API builds it (docs/incidents.md "Quarantine"): the deployment's
// store behind a per-process cache, every place and lift audited. composeCore builds one and hands
// it to the app (enforcement, routes) and to incident response (as `Isolation`).

import { uuidV7 } from "../shared/crypto";
import type { InvalidationBus } from "../shared/invalidation";
import {
  CachingQuarantineStore,
  type QuarantineRecord,
  QuarantineService,
  type QuarantineStore,
} from "../shared/quarantine";
import type { AuditInput } from "./audit-sink";

export interface QuarantineDeps {
  store: QuarantineStore;
  /**
   * Announces places and lifts to the other processes (Node: Redis pub/sub). Without one (the
   * edge, whose isolates share no bus) nothing is cached: every check reads the store.
   */
  bus?: InvalidationBus;
  /** How long a process may serve a check from memory when it has a bus (`[auth] key_cache_ms`). */
  ttlMs: number;
  audit: (e: AuditInput) => Promise<unknown>;
  onPlaced?: (r: QuarantineRecord) => Promise<void>;
  onLifted?: (r: QuarantineRecord) => Promise<void>;
}

export function quarantineService(d: QuarantineDeps): QuarantineService {
  return new QuarantineService({
    store: new CachingQuarantineStore(d.store, {
      ttlMs: d.bus ? d.ttlMs : 0,
      ...(d.bus ? { bus: d.bus } : {}),
    }),
    newId: uuidV7,
    onEvent: async ({ type, record }) => {
      await d.audit({
        eventType: type,
        agentId:
          type === "quarantine.lifted" ? (record.liftedBy ?? record.placedBy) : record.placedBy,
        details: { quarantineId: record.id, ...record },
      });
    },
    ...(d.onPlaced ? { onPlaced: d.onPlaced } : {}),
    ...(d.onLifted ? { onLifted: d.onLifted } : {}),
  });
}
