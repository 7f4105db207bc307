// Reports to the API with RFC 9421-signed requests (the sdk's Sigil client, role `worker`).
import { type Sigil, SigilError } from "../../sdk";
import type { Reporter, StartedReport } from "./consumer";
import type { ResultReport } from "./outbox";

/** 4xx other than these is a definite refusal; 408/425/429 and 5xx are worth retrying. */
const TRANSIENT_4XX = new Set([408, 425, 429]);

/**
 * `onQuarantined`: the API refused a report because this worker is quarantined or its key is
 * unknown or revoked (quarantine-pause.ts).
 */
export function apiReporter(client: Sigil, onQuarantined?: () => void): Reporter {
  // A revoked worker key (incident response revokes the key of a worker that forged a result) is
  // cut off as surely as a quarantine: stop taking jobs rather than burn their attempts.
  const seen = (e: unknown) => {
    if (e instanceof SigilError && (e.code === "quarantined" || e.code === "key-unknown"))
      onQuarantined?.();
  };
  return {
    async started(jobId: string, r: StartedReport) {
      let res: { proceed?: unknown };
      try {
        res = (await client.jobs.reportResult(jobId, { ...r })) as { proceed?: unknown };
      } catch (e) {
        seen(e);
        throw e;
      }
      return { proceed: res.proceed === true };
    },
    async result(jobId: string, r: ResultReport) {
      try {
        await client.jobs.reportResult(jobId, { ...r });
        return "accepted";
      } catch (e) {
        seen(e);
        if (
          e instanceof SigilError &&
          e.status >= 400 &&
          e.status < 500 &&
          !TRANSIENT_4XX.has(e.status)
        )
          return "refused";
        throw e;
      }
    },
  };
}
