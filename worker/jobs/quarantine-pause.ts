// A quarantined worker stops taking jobs (docs/incidents.md "Quarantine"): the API refuses every
// report it makes under its worker id (403 `quarantined`) and puts its jobs back on the queue for
// another worker, so a job this worker took would only be refused again. On the first such refusal
// the BullMQ worker is paused (no new jobs; nothing running is waited for: the API re-queued it),
// and a probe, a start report for no job, asks every `probeMs` whether the quarantine is still in
// force (403 `quarantined`; anything else, such as 404 for the unknown job: lifted); once lifted the
// worker resumes.
import type { WorkerLog } from "./consumer";

export interface QuarantinePause {
  /** A report was refused with 403 `quarantined`. */
  quarantined(): void;
  readonly paused: boolean;
  close(): void;
}

export function quarantinePause(o: {
  pause(): Promise<void>;
  resume(): void;
  /** Whether the worker is still quarantined; throws when the API cannot say. */
  probe(): Promise<boolean>;
  probeMs: number;
  log: WorkerLog;
}): QuarantinePause {
  let paused = false;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async () => {
    timer = undefined;
    if (closed) return;
    let still = true;
    try {
      still = await o.probe();
    } catch (e) {
      o.log.warn("quarantine probe failed; staying paused", { err: String(e) });
    }
    if (closed) return;
    if (still) {
      timer = setTimeout(check, o.probeMs);
      return;
    }
    paused = false;
    o.resume();
    o.log.warn("quarantine lifted: taking jobs again", {});
  };
  return {
    quarantined() {
      if (paused || closed) return;
      paused = true;
      o.log.warn("this worker is quarantined: paused, taking no jobs until it is lifted", {});
      o.pause().catch((e) => o.log.error("pause failed", { err: String(e) }));
      timer = setTimeout(check, o.probeMs);
    },
    get paused() {
      return paused;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
