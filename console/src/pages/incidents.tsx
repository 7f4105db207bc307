// Incidents (docs/console.md, docs/incidents.md): the list by state and severity, followed live
// over the signed change stream; an incident's record, its audit events (the evidence it names and
// its own incident.* / quarantine events) each verified here in the browser; and the admin moves:
// acknowledge, resolve, false positive, lift the quarantines it placed. The server checks roles.
import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Quarantine, Sigil } from "../../../sdk";
import { type AuditEvent, SEVERITIES } from "../../../shared/audit/event";
import { resolverFromJwks } from "../../../shared/audit/jwks";
import { verifyEd25519 } from "../../../shared/crypto/ed25519";
import { fromBase64Url } from "../../../shared/encoding";
import { verifyEvidence } from "../../../shared/incidents/evidence";
import {
  canMove,
  INCIDENT_STATES,
  type Incident,
  type IncidentState,
} from "../../../shared/incidents/record";
import { errorText } from "../api";
import { checkedSummary, EventTable } from "../events";
import type { PageProps } from "../main";
import { AnyOf, ErrorBox, Mark, Title, useLoad } from "../ui";
import { type EventVerdict, trustRoot, verifyAll } from "../verify";

/** How far past the incident's first event the trail is read for its own events. */
const SCAN_LIMIT = 20_000;

/** The incident's audit events: the evidence it names and every event naming its id. */
async function incidentEvents(sigil: Sigil, r: Incident): Promise<AuditEvent[]> {
  const named = new Set(r.evidence.eventIndexes);
  const out: AuditEvent[] = [];
  let from: number | null = r.evidence.from;
  let read = 0;
  while (from !== null && read < SCAN_LIMIT) {
    const page = await sigil.audit.list({ from, limit: 1000 });
    for (const e of page.events as AuditEvent[])
      if (named.has(e.index) || e.details.incidentId === r.incidentId) out.push(e);
    read += page.events.length;
    from = page.events.length === 0 || page.next === null ? null : Number(page.next);
  }
  return out;
}

type Move = {
  verb: "acknowledge" | "resolve" | "false-positive";
  to: IncidentState;
  label: string;
};
const MOVES: readonly Move[] = [
  { verb: "acknowledge", to: "acknowledged", label: "Acknowledge" },
  { verb: "resolve", to: "resolved", label: "Resolve" },
  { verb: "false-positive", to: "false_positive", label: "False positive" },
];

const targetText = (q: Quarantine): string =>
  q.target.kind === "subject"
    ? `subject ${q.target.subject}`
    : q.target.kind === "key"
      ? `key ${q.target.kid}`
      : `worker ${q.target.workerId}`;

/** The signed evidence bundle checked here, offline from the API: its signature under the service
 * key the JWKS publishes, the NDJSON export and its checkpoint, each inclusion proof. */
function EvidenceCheck({ sigil, id }: { sigil: Sigil; id: string }) {
  const [verdict, setVerdict] = useState<{ ok: boolean; detail: string }>();
  const [error, setError] = useState<unknown>();
  const check = async () => {
    setError(undefined);
    try {
      const [bundle, jwks] = await Promise.all([
        sigil.incidents.evidence(id),
        sigil.wellKnownKeys(),
      ]);
      const key = jwks.keys.find((k) => k.kid === bundle.kid);
      if (!key?.x) {
        setVerdict({ ok: false, detail: `service key ${String(bundle.kid)} is not published` });
        return;
      }
      const r = await verifyEvidence(JSON.stringify(bundle), {
        keys: resolverFromJwks(jwks),
        verify: verifyEd25519,
        serviceKey: fromBase64Url(key.x),
      });
      setVerdict(
        r.valid
          ? { ok: true, detail: `signed by ${String(bundle.kid)}; export and proofs verify` }
          : { ok: false, detail: r.reason ?? "does not verify" },
      );
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <button type="button" onClick={check}>
        Verify the evidence bundle
      </button>
      {verdict && (
        <p data-testid="evidence-verdict">
          Evidence bundle: <Mark ok={verdict.ok} /> {verdict.detail}
        </p>
      )}
      <ErrorBox error={error} />
    </>
  );
}

function IncidentView({
  sigil,
  id,
  version,
  onChanged,
}: {
  sigil: Sigil;
  id: string;
  /** Bumped when the change stream reports this incident: everything is read again. */
  version: number;
  onChanged: () => void;
}) {
  const [incident, setIncident] = useState<Incident>();
  const [events, setEvents] = useState<AuditEvent[]>();
  const [verdicts, setVerdicts] = useState<Record<number, EventVerdict>>({});
  const [quarantines, setQuarantines] = useState<Quarantine[]>([]);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>();
  const [reason, setReason] = useState("");
  const [status, setStatus] = useState("");
  const [local, setLocal] = useState(0);

  useEffect(() => {
    let stop = false;
    setDone(false);
    (async () => {
      const r = await sigil.incidents.get(id);
      if (stop) return;
      setIncident(r);
      const [jwks, checkpoint, list, q] = await Promise.all([
        sigil.wellKnownKeys(),
        sigil.audit.checkpoint(),
        incidentEvents(sigil, r),
        // The newest 500 quarantines (the route's page), active ones only: those it placed.
        sigil.quarantine.list({ active: "true", limit: 500 }),
      ]);
      if (stop) return;
      setEvents(list);
      setQuarantines(q.quarantines.filter((x) => x.incidentId === id));
      const trust = await trustRoot(jwks, checkpoint);
      const found: Record<number, EventVerdict> = {};
      await verifyAll(sigil, trust, list, (v) => {
        found[v.index] = v;
      });
      if (!stop) {
        setVerdicts(found);
        setDone(true);
      }
    })().catch((e: unknown) => !stop && setError(e));
    return () => {
      stop = true;
    };
  }, [sigil, id, version, local]);

  const act = async (label: string, f: () => Promise<unknown>) => {
    setError(undefined);
    setStatus("");
    try {
      await f();
      setStatus(`${label}: done.`);
      setReason("");
      setLocal((n) => n + 1);
      onChanged();
    } catch (e) {
      setError(e);
    }
  };

  if (!incident)
    return (
      <section aria-labelledby="h-incident">
        <h2 id="h-incident">Incident {id}</h2>
        <ErrorBox error={error} />
        {!error && <p>Loading…</p>}
      </section>
    );
  const r = incident;
  // The runner's own bookkeeping (which timeline entries are audited) is not a response.
  const actions = r.actions.filter((a) => a.action !== "audit");
  return (
    <section aria-labelledby="h-incident" class="detail grow">
      <h2 id="h-incident">
        Incident <code>{r.incidentId}</code>
      </h2>
      <dl class="facts">
        <dt>State</dt>
        <dd data-testid="incident-state">{r.state}</dd>
        <dt>Severity</dt>
        <dd>{r.severity}</dd>
        <dt>Detector</dt>
        <dd>
          {r.detector} ({r.category}, rules {r.rulesVersion})
        </dd>
        <dt>Opened</dt>
        <dd>{r.openedAt}</dd>
        <dt>Updated</dt>
        <dd>{r.updatedAt}</dd>
        {(
          [
            ["Subjects", r.subjects],
            ["Keys", r.keys],
            ["Workers", r.workers],
            ["Jobs", r.jobs],
          ] as const
        ).map(([name, list]) =>
          list.length === 0 ? null : (
            <Fragment key={name}>
              <dt>{name}</dt>
              <dd>
                {list.map((x) => (
                  <code key={x}>{x} </code>
                ))}
              </dd>
            </Fragment>
          ),
        )}
        <dt>Evidence</dt>
        <dd>
          events {r.evidence.from}–{r.evidence.to}
          {r.evidence.bundle
            ? ` · signed bundle at tree size ${r.evidence.bundle.treeSize}, SHA-256 ${r.evidence.bundle.sha256.slice(0, 16)}…`
            : " · no bundle (only high and critical incidents keep one)"}
        </dd>
      </dl>
      {r.evidence.bundle && <EvidenceCheck key={r.incidentId} sigil={sigil} id={r.incidentId} />}

      <h3>Respond</h3>
      <label for="incident-reason">Reason (kept in the audit trail)</label>
      <input
        id="incident-reason"
        value={reason}
        onInput={(e) => setReason(e.currentTarget.value)}
      />
      <div class="actions">
        {MOVES.map((m) => (
          <button
            key={m.verb}
            type="button"
            class={m.verb === "false-positive" ? "danger" : undefined}
            disabled={!reason.trim() || !canMove(r.state, m.to)}
            onClick={() =>
              act(m.label, () => sigil.incidents.move(r.incidentId, m.verb, reason.trim()))
            }
          >
            {m.label}
          </button>
        ))}
        {quarantines.map((q) => (
          <button
            key={q.id}
            type="button"
            disabled={!reason.trim()}
            onClick={() =>
              act(`Lift quarantine of ${targetText(q)}`, () =>
                sigil.quarantine.lift(q.id, reason.trim()),
              )
            }
          >
            Lift quarantine of {targetText(q)}
          </button>
        ))}
      </div>
      <p role="status">{status}</p>
      <ErrorBox error={error} />

      <h3>Timeline</h3>
      <table>
        <caption class="sr-only">State changes of the incident, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Change</th>
            <th scope="col">State</th>
            <th scope="col">Severity</th>
            <th scope="col">By</th>
            <th scope="col">Reason</th>
          </tr>
        </thead>
        <tbody>
          {r.timeline.map((t) => (
            <tr key={`${t.at}-${t.change}-${t.state}`}>
              <td>{t.at}</td>
              <td>{t.change}</td>
              <td>{t.state}</td>
              <td>{t.severity}</td>
              <td>{t.by}</td>
              <td>{t.reason ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>

      <h3>Audit events</h3>
      <p aria-live="polite" data-testid="incident-events-summary">
        {checkedSummary(events, verdicts, done, "Reading the trail…")}
      </p>
      <EventTable
        caption="The incident's audit events, oldest first"
        events={events ?? []}
        verdicts={verdicts}
        index={(e) => <a href={`#/audit?type=${encodeURIComponent(e.eventType)}`}>{e.index}</a>}
        reasons
      />

      {actions.length > 0 && (
        <>
          <h3>Response actions</h3>
          <ul>
            {actions.map((a) => (
              <li key={`${a.at}-${a.action}-${a.target}`}>
                {a.at}: {a.action} {a.target ?? ""} — {a.outcome}
                {a.detail ? ` (${a.detail})` : ""}
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

export function IncidentsPage({ sigil, params }: PageProps) {
  const [state, setState] = useState(params.get("state") ?? "");
  const [severity, setSeverity] = useState(params.get("severity") ?? "");
  const [id, setId] = useState<string | undefined>(params.get("id") ?? undefined);
  const [version, setVersion] = useState(0);
  const [live, setLive] = useState<string>("connecting");
  const list = useLoad(
    () =>
      sigil.incidents.list({
        ...(state ? { state: state as IncidentState } : {}),
        ...(severity ? { severity: severity as Incident["severity"] } : {}),
        limit: 100,
      }),
    [sigil, state, severity],
  );
  // The stream outlives filter changes and selections: it reads the current ones through refs.
  const reloadRef = useRef(list.reload);
  reloadRef.current = list.reload;
  const idRef = useRef(id);
  idRef.current = id;

  // Live: the signed change stream (fetch streaming). The server ends it after a few minutes;
  // reconnect, and read the list again since changes between streams are not replayed.
  useEffect(() => {
    const abort = new AbortController();
    (async () => {
      while (!abort.signal.aborted) {
        setLive("following changes");
        for await (const e of sigil.incidents.events({ signal: abort.signal })) {
          if (e.event !== "incident") continue;
          reloadRef.current();
          const changed = (e.data as { incidentId?: string }).incidentId;
          if (changed !== undefined && changed === idRef.current) setVersion((n) => n + 1);
        }
        reloadRef.current();
        // A stream the server closed at once must not become a busy loop.
        await new Promise((r) => setTimeout(r, 1000));
      }
    })().catch((e: unknown) => {
      if (!abort.signal.aborted) setLive(`stopped (${errorText(e)}); use Refresh`);
    });
    return () => abort.abort();
  }, [sigil]);

  const items = list.value?.incidents ?? [];
  return (
    <>
      <Title>Incidents</Title>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <AnyOf
          label="State"
          id="incidents-state"
          value={state}
          options={INCIDENT_STATES}
          onChange={setState}
        />
        <AnyOf
          label="Severity"
          id="incidents-severity"
          value={severity}
          options={SEVERITIES}
          onChange={setSeverity}
        />
        <button type="button" onClick={list.reload} disabled={list.loading}>
          Refresh
        </button>
      </form>
      <p data-testid="incidents-live">Live updates: {live}.</p>
      <ErrorBox error={list.error} />
      <div class="split">
        <section aria-labelledby="h-incidents">
          <h2 id="h-incidents">Newest first</h2>
          <p aria-live="polite">
            {list.loading && !list.value ? "Loading…" : `${items.length} incident(s).`}
          </p>
          <table>
            <caption class="sr-only">Incidents, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Opened</th>
                <th scope="col">Severity</th>
                <th scope="col">State</th>
                <th scope="col">Detector</th>
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.incidentId} data-incident={i.incidentId} data-state={i.state}>
                  <td>
                    <button
                      type="button"
                      class="link"
                      aria-label={`Open incident ${i.incidentId}`}
                      onClick={() => setId(i.incidentId)}
                    >
                      {i.openedAt}
                    </button>
                  </td>
                  <td>{i.severity}</td>
                  <td>{i.state}</td>
                  <td>{i.detector}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        {id && (
          <IncidentView key={id} sigil={sigil} id={id} version={version} onChanged={list.reload} />
        )}
      </div>
    </>
  );
}
