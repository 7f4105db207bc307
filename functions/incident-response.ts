// Incident response as the API runs it (docs/incidents.md "Running it"): the detection runner and
// the responder over the deployment's audit trail, incident store, quarantine service and key
// manager, composed once here for both runtimes. Node steps it from a poll loop
// (`startDetection`, functions/node/main.ts); the edge steps it after responses through
// waitUntil (`kick`). Exactly-once holds whoever steps: the runner's compare-and-set decides.
import type { AuditService } from "../shared/audit";
import type { SigilConfig } from "../shared/config";
import { type Signer, uuidV7 } from "../shared/crypto";
import {
  DetectionEngine,
  DetectionRunner,
  type IncidentStore,
  Responder,
  type StepResult,
  violationAction,
} from "../shared/incidents";
import { type KeyManager, KeyRegistryError } from "../shared/keys";
import type { Logger } from "../shared/log";
import type { QuarantineService } from "../shared/quarantine";
import { type IncidentWebhooks, incidentWebhooks } from "./incident-webhooks";

export interface IncidentResponseDeps {
  config: SigilConfig;
  store: IncidentStore;
  audit: AuditService;
  signer: Signer;
  keyManager: KeyManager;
  quarantine?: QuarantineService;
  log: Logger;
  /** Default: `[incidents] alert_webhooks` / `emergency_webhooks`, signed with `signer`. */
  webhooks?: IncidentWebhooks;
}

export interface IncidentResponse {
  readonly runner: DetectionRunner;
  readonly responder: Responder;
  readonly webhooks: IncidentWebhooks;
  /** One detection step; concurrent callers in one process share the step under way. */
  step(): Promise<StepResult>;
  /** Finishes audits and responses a killed process left undone. */
  sweep(): Promise<void>;
  /** Resolves once the responses this process started (by step or sweep) have ended. */
  responsesIdle(): Promise<void>;
  /** The edge, after a response: a step unless one is under way here; errors logged. */
  kick(): Promise<void>;
}

const RESPONDER = "incident-response";

export function incidentResponse(d: IncidentResponseDeps): IncidentResponse {
  const { config, audit, log } = d;
  const webhooks =
    d.webhooks ??
    incidentWebhooks({
      alert: config.incidents.alert_webhooks,
      emergency: config.incidents.emergency_webhooks,
      signer: d.signer,
      log,
    });
  const revoke = async (kid: string, reason: string) => {
    let change: Awaited<ReturnType<KeyManager["revoke"]>>;
    try {
      change = await d.keyManager.revoke(kid, { reason });
    } catch (e) {
      // Idempotent: revoked already (by an admin, or by this step before a crash).
      if (e instanceof KeyRegistryError && e.code === "already_revoked") return;
      throw e;
    }
    await audit.append({ eventType: "key.revoked", agentId: RESPONDER, details: change.event });
    // GOVERNANCE: a service-held key never outlives its owner's last usable key.
    if (change.record.role === "agent")
      for (const held of await d.keyManager.revokeOrphanedHeldKeys(
        change.record.subject,
        `owner key ${kid} revoked`,
      ))
        await audit.append({ eventType: "key.revoked", agentId: RESPONDER, details: held.event });
  };
  const responder = new Responder({
    store: d.store,
    evidence: audit,
    signer: d.signer,
    ...(d.quarantine ? { isolation: d.quarantine } : {}),
    revoke,
    publish: (channel, body) => webhooks.publish(channel, body),
    policyViolationAction: violationAction(config.security.policy_violation_action),
    emergencyScope: config.incidents.emergency_scope,
  });
  const engine = new DetectionEngine(
    {
      incidents: config.incidents,
      sandboxEscapeDetection: config.security.sandbox_escape_detection,
    },
    uuidV7,
  );
  const runner: DetectionRunner = new DetectionRunner({
    store: d.store,
    audit,
    engine,
    batch: config.incidents.batch,
    // Responses run beside detection, not inside its step: a step waiting for one incident's
    // revocation and evidence bundle (hundreds of ms) delayed the detection, and so the
    // quarantine, of the next attack (docs/incidents.md "Running it").
    onChange: async (s) => respondTo(s.record.incidentId),
  });
  // One response at a time per incident in this process; a change meanwhile asks for another pass.
  // Across processes the responder's compare-and-set claims keep each action once.
  const responding = new Map<string, Promise<void>>();
  const again = new Set<string>();
  const respondTo = (id: string): void => {
    if (responding.has(id)) {
      again.add(id);
      return;
    }
    const run = (async () => {
      do {
        again.delete(id);
        try {
          // A response that changed the record (mitigated, actions) is audited like any other
          // change; that audit's onChange asks for the next pass, until nothing changes.
          if (await responder.respond(id)) await runner.finish(id);
        } catch (e) {
          log.warn("incident response failed", { incidentId: id, err: String(e) });
        }
      } while (again.has(id));
    })().finally(() => responding.delete(id));
    responding.set(id, run);
  };
  const responsesIdle = async () => {
    while (responding.size > 0) await Promise.all(responding.values());
  };
  let running: Promise<StepResult> | undefined;
  const step = () => {
    running ??= runner.step().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    runner,
    responder,
    webhooks,
    step,
    sweep: () => runner.sweep(),
    responsesIdle,
    // A step already under way in this isolate is left to the request that started it (workerd
    // ties I/O to a request); the webhooks are waited for too, as waitUntil holds nothing else.
    kick: async () => {
      if (running) return;
      await step()
        .then(responsesIdle)
        .then(() => webhooks.idle())
        .catch((e: unknown) => log.warn("incident detection step failed", { err: String(e) }));
    },
  };
}

export interface DetectionLoop {
  /** Stops polling and waits for the step under way (nothing is left half-stored: see runner.ts). */
  close(): Promise<void>;
}

/**
 * Node: steps as long as there is something new, then every `[incidents] poll_ms`; sweeps what a
 * killed process left once at start and then every `sweepEveryMs`. An event appended in this
 * process (`appended`, e.g. AuditService.observe) wakes the loop at once, so the poll interval
 * bounds only the latency of events another process appended (docs/incidents.md "Running it").
 */
export function startDetection(
  ir: IncidentResponse,
  o: {
    pollMs: number;
    log: Logger;
    sweepEveryMs?: number;
    appended?: (wake: () => void) => void;
  },
): DetectionLoop {
  let stopped = false;
  // Set by an append; read before sleeping, so an append during a step is not slept through.
  let pending = false;
  let wake: (() => void) | undefined;
  o.appended?.(() => {
    pending = true;
    wake?.();
  });
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        wake = undefined;
        clearTimeout(t);
        r();
      };
    });
  const sweepEvery = o.sweepEveryMs ?? 60_000;
  const loop = (async () => {
    let lastSweep = 0;
    while (!stopped) {
      pending = false;
      try {
        if (Date.now() - lastSweep >= sweepEvery) {
          lastSweep = Date.now();
          await ir.sweep();
        }
        const r = await ir.step();
        // More may be waiting (a full batch, a lost race, an append meanwhile): look again at once.
        if (r.processed > 0 || r.won || pending) continue;
      } catch (e) {
        // A failing step (its store down) waits a poll, appends meanwhile or not: no hot retry.
        o.log.warn("incident detection step failed", { err: String(e) });
      }
      if (!stopped) await sleep(o.pollMs);
    }
  })();
  return {
    async close() {
      stopped = true;
      wake?.();
      await loop;
      await ir.responsesIdle();
      // Deliveries under way get a moment; a dead receiver's retries do not hold up shutdown.
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        ir.webhooks.idle(),
        new Promise((r) => {
          t = setTimeout(r, 2000);
        }),
      ]);
      clearTimeout(t);
    },
  };
}
