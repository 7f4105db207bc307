// The contract between incident response (which decides to isolate) and the quarantine service
// (which enforces it): docs/incidents.md "Response". Only types here; the service, its store
// port and the adapters live beside this file.

/** What can be isolated: a subject (every key it signs with), one key id, or a worker node. */
export type QuarantineTarget =
  | { readonly kind: "subject"; readonly subject: string }
  | { readonly kind: "key"; readonly kid: string }
  | { readonly kind: "worker"; readonly workerId: string };

export interface QuarantineRecord {
  readonly id: string;
  readonly target: QuarantineTarget;
  readonly reason: string;
  /** The incident that placed it, when placed automatically. */
  readonly incidentId?: string;
  /** The subject (admin) or `incident-response` that placed it. */
  readonly placedBy: string;
  readonly placedAt: string;
  readonly liftedAt?: string;
  readonly liftedBy?: string;
  readonly liftReason?: string;
}

export interface PlaceQuarantine {
  readonly target: QuarantineTarget;
  readonly reason: string;
  readonly incidentId?: string;
  readonly by: string;
}

/**
 * What incident response needs from the quarantine service. `place` is idempotent: while a
 * quarantine of the same target is in force it returns that record and changes nothing, so two
 * API processes mitigating the same incident isolate once. Placing it also cancels the target's
 * queued jobs and kills its running ones (subject, key) or refuses the worker's results and
 * re-queues its jobs (worker), each step audited.
 */
export interface Isolation {
  place(input: PlaceQuarantine): Promise<QuarantineRecord>;
}
