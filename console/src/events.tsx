// Audit events as the explorer and the incidents page show them: one row per event with its
// in-browser verification mark (console/src/verify.ts), and the summary line over them.
import type { ComponentChildren } from "preact";
import type { AuditEvent } from "../../shared/audit/event";
import { Mark } from "./ui";
import type { EventVerdict } from "./verify";

export function checkedSummary(
  events: readonly AuditEvent[] | undefined,
  verdicts: Record<number, EventVerdict>,
  done: boolean,
  loading: string,
): string {
  if (events === undefined) return loading;
  const failed = Object.values(verdicts).filter((v) => v.ok === false).length;
  return `${Object.keys(verdicts).length} of ${events.length} events checked in this browser${
    done ? " (done)" : ""
  }; ${failed} failed.`;
}

export function EventTable({
  caption,
  events,
  verdicts,
  index,
  reasons = false,
}: {
  caption: string;
  events: readonly AuditEvent[];
  verdicts: Record<number, EventVerdict>;
  /** The first cell: what a click on the index does. */
  index: (e: AuditEvent) => ComponentChildren;
  /** Say beside the mark why a check did not pass (when there is no detail panel). */
  reasons?: boolean;
}) {
  return (
    <table class="events">
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Time</th>
          <th scope="col">Type</th>
          <th scope="col">Subject</th>
          <th scope="col">Verified</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => {
          const v = verdicts[e.index];
          return (
            <tr
              key={e.index}
              data-index={e.index}
              data-type={e.eventType}
              data-verified={v ? String(v.ok) : "checking"}
            >
              <td>{index(e)}</td>
              <td>{e.timestamp}</td>
              <td>{e.eventType}</td>
              <td>{e.agentId}</td>
              <td>
                <Mark ok={v?.ok} />
                {reasons && v && v.ok !== true
                  ? ` ${[v.hash, v.signature, v.inclusion]
                      .map((c) => ("reason" in c ? `${c.reason}.` : ""))
                      .join(" ")}`
                  : ""}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
