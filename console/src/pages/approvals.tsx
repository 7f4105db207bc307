// Approvals (docs/console.md, docs/governance.md "Approvals"): the pending queue this key may see;
// approve or deny with a reason. The server checks the key's groups; the page only asks.
import { useState } from "preact/hooks";
import type { Approval } from "../../../sdk";
import type { PageProps } from "../main";
import { ErrorBox, Title, useLoad } from "../ui";

export function ApprovalsPage({ sigil }: PageProps) {
  const list = useLoad(() => sigil.approvals.list({ status: "pending", limit: 100 }));
  const [error, setError] = useState<unknown>();
  const [reasons, setReasons] = useState<Record<string, string>>({});
  const decide = async (a: Approval, decision: "approve" | "deny") => {
    setError(undefined);
    try {
      const reason = reasons[a.id]?.trim();
      await sigil.approvals.decide(a.id, { decision, ...(reason ? { reason } : {}) });
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  const items = list.value?.approvals ?? [];
  return (
    <>
      <Title>Approvals</Title>
      <ErrorBox error={list.error ?? error} />
      <p aria-live="polite">
        {list.loading ? "Loading…" : `${items.length} pending approval(s) this key may see.`}
      </p>
      <ul class="cards">
        {items.map((a) => (
          <li key={a.id} class="card">
            <h2>
              {a.request.action} {a.request.resource ?? ""}
            </h2>
            <p>
              Asked by <code>{a.request.subject}</code> · approver group{" "}
              <strong>{a.approver}</strong> · id <code>{a.id}</code>
            </p>
            <label for={`reason-${a.id}`}>Reason</label>
            <input
              id={`reason-${a.id}`}
              value={reasons[a.id] ?? ""}
              onInput={(e) => setReasons({ ...reasons, [a.id]: e.currentTarget.value })}
            />
            <div class="actions">
              <button type="button" onClick={() => decide(a, "approve")}>
                Approve
              </button>
              <button type="button" class="danger" onClick={() => decide(a, "deny")}>
                Deny
              </button>
            </div>
          </li>
        ))}
      </ul>
    </>
  );
}
