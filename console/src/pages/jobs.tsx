// Jobs (docs/console.md): submit, open by id, live output over the signed event stream (fetch
// streaming: EventSource cannot sign its request), and the result's worker signature checked here.
import { useEffect, useState } from "preact/hooks";
import type { JobRecord, Sigil } from "../../../sdk";
import { verifyEd25519 } from "../../../shared/crypto/ed25519";
import { fromBase64Url } from "../../../shared/encoding";
import { verifyResult } from "../../../shared/jobs/result";
import type { PageProps } from "../main";
import { Code, ErrorBox, Mark, Title, useLoad } from "../ui";

/** Job ids of the newest job.* audit events (there is no job listing route; the trail has them). */
async function recentJobs(sigil: Sigil): Promise<{ id: string; type: string; at: string }[]> {
  const { treeSize } = await sigil.audit.checkpoint();
  const page = await sigil.audit.list({ from: Math.max(0, treeSize - 500), limit: 1000 });
  const seen = new Map<string, { id: string; type: string; at: string }>();
  for (const e of page.events) {
    const id = e.details.jobId;
    if (e.eventType.startsWith("job.") && typeof id === "string")
      seen.set(id, { id, type: e.eventType, at: e.timestamp });
  }
  return [...seen.values()].reverse().slice(0, 20);
}

type Verdict = { ok: boolean; detail: string };

async function checkResult(sigil: Sigil, id: string, record: JobRecord): Promise<Verdict> {
  const r = record.result;
  if (!r) return { ok: false, detail: "no result" };
  const k = (await sigil.wellKnownKeys()).keys.find((x) => x.kid === r.kid);
  if (!k) return { ok: false, detail: `worker key ${r.kid} is not published` };
  const v = await verifyResult(
    { result: r.signed, resultHash: r.resultHash, kid: r.kid, signature: r.signature },
    fromBase64Url(k.x),
    verifyEd25519,
    { jobId: id, output: { stdout: r.stdout, stderr: r.stderr } },
  );
  return v.ok
    ? { ok: true, detail: `signed by worker ${r.kid}` }
    : { ok: false, detail: `${v.reason}: ${v.detail}` };
}

/** `onSettled` runs once the job has finished and its record is read, so lists can refresh. */
function JobView({ sigil, id, onSettled }: { sigil: Sigil; id: string; onSettled?: () => void }) {
  const [status, setStatus] = useState("connecting");
  const [output, setOutput] = useState("");
  const [record, setRecord] = useState<JobRecord>();
  const [verdict, setVerdict] = useState<Verdict>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    const abort = new AbortController();
    (async () => {
      for await (const e of sigil.jobs.events(id, { signal: abort.signal })) {
        if (e.event === "output") {
          const d = e.data as { data?: string };
          setOutput((o) => o + (d.data ?? ""));
        } else setStatus(e.event);
        if (e.event === "finished") break;
      }
      const rec = await sigil.jobs.get(id);
      setRecord(rec);
      setStatus(String(rec.status));
      setVerdict(await checkResult(sigil, id, rec));
      onSettled?.();
    })().catch((e: unknown) => !abort.signal.aborted && setError(e));
    return () => abort.abort();
  }, [sigil, id]);
  return (
    <section aria-labelledby="h-job">
      <h2 id="h-job">
        Job <code>{id}</code>
      </h2>
      <p>
        Status: <strong data-testid="job-status">{status}</strong>
        {record?.result && ` · exit code ${record.result.exitCode}`}
      </p>
      <h3>Output</h3>
      <Code class="output" aria-live="polite" data-testid="job-output">
        {output}
      </Code>
      {verdict && (
        <p data-testid="job-verdict">
          Result signature: <Mark ok={verdict.ok} /> {verdict.detail}
        </p>
      )}
      {record && (
        <p>
          <a href={`#/audit?subject=&type=job`}>Audit events of jobs</a>
        </p>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

export function JobsPage({ sigil, params }: PageProps) {
  const recent = useLoad(() => recentJobs(sigil));
  const [image, setImage] = useState("sigil/busybox:1");
  const [command, setCommand] = useState('sh -c "echo hello; sleep 1; echo done"');
  const [openId, setOpenId] = useState(params.get("id") ?? "");
  const [id, setId] = useState<string | undefined>(params.get("id") ?? undefined);
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const a = await sigil.jobs.submit({ image, command: splitCommand(command) });
      setId(a.jobId);
      recent.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <Title>Jobs</Title>
      <div class="split">
        <section aria-labelledby="h-recent">
          <h2 id="h-recent">Recent jobs</h2>
          <button type="button" onClick={recent.reload} disabled={recent.loading}>
            Refresh
          </button>
          <ErrorBox error={recent.error} />
          <ul>
            {(recent.value ?? []).map((j) => (
              <li key={j.id}>
                <button type="button" class="link" onClick={() => setId(j.id)}>
                  {j.id}
                </button>{" "}
                {j.type} at {j.at}
              </li>
            ))}
          </ul>
        </section>
        <form onSubmit={submit} aria-labelledby="h-submit">
          <h2 id="h-submit">Run a job</h2>
          <p>Only an agent key may submit jobs (docs/governance.md); an operator watches them.</p>
          <label for="job-image">Image</label>
          <input id="job-image" value={image} onInput={(e) => setImage(e.currentTarget.value)} />
          <label for="job-command">Command</label>
          <input
            id="job-command"
            value={command}
            onInput={(e) => setCommand(e.currentTarget.value)}
          />
          <button type="submit">Run</button>
          <ErrorBox error={error} />
        </form>
        <form
          aria-labelledby="h-open"
          onSubmit={(e) => {
            e.preventDefault();
            setId(openId.trim() || undefined);
          }}
        >
          <h2 id="h-open">Open a job</h2>
          <label for="job-id">Job id</label>
          <input id="job-id" value={openId} onInput={(e) => setOpenId(e.currentTarget.value)} />
          <button type="submit">Open</button>
        </form>
      </div>
      {id && <JobView key={id} sigil={sigil} id={id} onSettled={recent.reload} />}
    </>
  );
}

/** Shell-like words: double or single quotes group, no expansion. */
export function splitCommand(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3] ?? "");
  return out;
}
