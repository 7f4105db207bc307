// Audit explorer (docs/console.md): the latest events, filtered by type, subject, severity and
// time; every event verified here in the browser (hash, signature against the JWKS, inclusion in
// the latest signed checkpoint) and shown as a mark. An event the API altered fails alone.
import { useEffect, useMemo, useState } from "preact/hooks";
import { type AuditEvent, eventSeverity, SEVERITIES } from "../../../shared/audit/event";
import { checkedSummary, EventTable } from "../events";
import type { PageProps } from "../main";
import { AnyOf, Code, ErrorBox, Mark, Title } from "../ui";
import { type EventVerdict, trustRoot, verifyAll } from "../verify";

const PAGE = 200;

export function AuditPage({ sigil, params }: PageProps) {
  const [events, setEvents] = useState<AuditEvent[]>();
  const [verdicts, setVerdicts] = useState<Record<number, EventVerdict>>({});
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const [elapsed, setElapsed] = useState<number>();
  const [type, setType] = useState(params.get("type") ?? "");
  const [subject, setSubject] = useState(params.get("subject") ?? "");
  const [severity, setSeverity] = useState(params.get("severity") ?? "");
  const [since, setSince] = useState("");
  const [open, setOpen] = useState<number>();
  const limit = Number(params.get("limit") ?? PAGE) || PAGE;

  useEffect(() => {
    let stop = false;
    const t0 = performance.now();
    (async () => {
      const [jwks, checkpoint] = await Promise.all([
        sigil.wellKnownKeys(),
        sigil.audit.checkpoint(),
      ]);
      const trust = await trustRoot(jwks, checkpoint);
      // The newest events: those the latest checkpoint covers, then any after it.
      const from = Math.max(0, checkpoint.treeSize - limit);
      const list: AuditEvent[] = [];
      let cursor: number | string | null = from;
      while (cursor !== null && list.length < limit + 50) {
        const page = await sigil.audit.list({ from: Number(cursor), limit: 1000 });
        list.push(...page.events);
        cursor = page.events.length === 0 ? null : page.next;
      }
      if (stop) return;
      setEvents(list.slice(0, limit + 50));
      const found: Record<number, EventVerdict> = {};
      let pending = 0;
      await verifyAll(sigil, trust, list, (v) => {
        found[v.index] = v;
        // Re-render in batches: one state update per event would dominate 1,000 events.
        if (++pending % 25 === 0 && !stop) setVerdicts({ ...found });
      });
      if (!stop) {
        setVerdicts({ ...found });
        setDone(true);
        setElapsed(Math.round(performance.now() - t0));
      }
    })().catch((e: unknown) => !stop && setError(e));
    return () => {
      stop = true;
    };
  }, [sigil, limit]);

  const shown = useMemo(() => {
    const t = since ? Date.parse(since) : Number.NaN;
    return (events ?? [])
      .filter(
        (e) =>
          (!type || e.eventType.includes(type)) &&
          (!subject || e.agentId.includes(subject)) &&
          (!severity || eventSeverity(e) === severity) &&
          (Number.isNaN(t) || Date.parse(e.timestamp) >= t),
      )
      .reverse();
  }, [events, type, subject, severity, since]);

  const detail = open === undefined ? undefined : events?.find((e) => e.index === open);
  return (
    <>
      <Title>Audit explorer</Title>
      <ErrorBox error={error} />
      <p aria-live="polite" data-testid="audit-summary" data-elapsed-ms={elapsed}>
        {checkedSummary(events, verdicts, done, "Loading events…")}
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Type
          <input value={type} onInput={(e) => setType(e.currentTarget.value)} />
        </label>
        <label>
          Subject
          <input value={subject} onInput={(e) => setSubject(e.currentTarget.value)} />
        </label>
        <AnyOf label="Severity" value={severity} options={SEVERITIES} onChange={setSeverity} />
        <label>
          Since
          <input
            type="datetime-local"
            value={since}
            onInput={(e) => setSince(e.currentTarget.value)}
          />
        </label>
      </form>
      <div class="split">
        <EventTable
          caption="Audit events, newest first"
          events={shown}
          verdicts={verdicts}
          index={(e) => (
            <button type="button" class="link" onClick={() => setOpen(e.index)}>
              {e.index}
            </button>
          )}
        />
        {detail && (
          <section class="detail" aria-labelledby="h-event">
            <h2 id="h-event">Event {detail.index}</h2>
            <VerdictList v={verdicts[detail.index]} />
            <Code>{JSON.stringify(detail, null, 2)}</Code>
          </section>
        )}
      </div>
    </>
  );
}

function VerdictList({ v }: { v: EventVerdict | undefined }) {
  if (!v) return <p>Checking…</p>;
  const row = (name: string, c: EventVerdict["hash"]) => (
    <li>
      {name}: <Mark ok={c.ok} /> {"reason" in c ? c.reason : ""}
    </li>
  );
  return (
    <ul class="checks">
      {row("Hash", v.hash)}
      {row("Signature", v.signature)}
      {row("Inclusion in the signed checkpoint", v.inclusion)}
    </ul>
  );
}
