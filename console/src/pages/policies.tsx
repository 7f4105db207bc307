// Policies (docs/console.md): an editor whose parse and compile errors come, as the operator
// types, from the same shared/ compiler the server runs (line and column); versions with a diff;
// rollback; a try-it box that evaluates a request against the DRAFT here in the browser (the
// server's /v1/evaluate answers agent keys only, and judges the saved set, not the draft).
import { useEffect, useMemo, useState } from "preact/hooks";
import {
  buildPolicySet,
  type Diagnostic,
  EvaluationRequestSchema,
  PolicyError,
  parse,
} from "../../../shared/policy";
import type { PageProps } from "../main";
import { Code, ErrorBox, Title, useLoad } from "../ui";

const EXAMPLE = `policy console_example {
    allow: read(reports) if user.team == "ops"
    deny: delete(reports)
}
`;

type Compiled =
  | { ok: true; evaluate: ReturnType<typeof buildPolicySet>["evaluate"] }
  | { ok: false; diagnostics: Diagnostic[] };

function compileDraft(name: string, source: string): Compiled {
  try {
    const set = buildPolicySet([{ name: name || "draft", sha256: "draft", doc: parse(source) }]);
    return { ok: true, evaluate: set.evaluate.bind(set) };
  } catch (e) {
    if (e instanceof PolicyError) return { ok: false, diagnostics: e.diagnostics };
    const message = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      diagnostics: [{ line: 1, column: 1, message, expected: [], found: "", phase: "compile" }],
    };
  }
}

/** Line diff (longest common subsequence); policies are small. */
export function diffLines(a: string, b: string): { op: " " | "-" | "+"; line: string }[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const t = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      t[i]![j] = x[i] === y[j] ? t[i + 1]![j + 1]! + 1 : Math.max(t[i + 1]![j]!, t[i]![j + 1]!);
  const out: { op: " " | "-" | "+"; line: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ op: " ", line: x[i++]! });
      j++;
    } else if (j < m && (i >= n || t[i]![j + 1]! >= t[i + 1]![j]!))
      out.push({ op: "+", line: y[j++]! });
    else out.push({ op: "-", line: x[i++]! });
  }
  return out;
}

export function PoliciesPage({ sigil, params }: PageProps) {
  const list = useLoad(() => sigil.policies.list());
  const [name, setName] = useState(params.get("name") ?? "console_example");
  const [source, setSource] = useState(EXAMPLE);
  const [saved, setSaved] = useState<string>();
  const [error, setError] = useState<unknown>();
  const [live, setLive] = useState<Compiled>(() => compileDraft(name, EXAMPLE));
  const versions = useLoad(
    () =>
      sigil.policies
        .versions(name)
        .then((r) => (r.versions as { version: number; sha256: string }[]) ?? [])
        .catch(() => []),
    [name, saved],
  );
  const [diffWith, setDiffWith] = useState<{ version: number; source: string }>();
  const [tryReq, setTryReq] = useState({
    action: "read",
    resource: "reports",
    context: '{ "user": { "team": "ops" } }',
  });
  const [draftDecision, setDraftDecision] = useState<unknown>();

  // Recompile shortly after typing stops: the compiler is fast, but not on every keystroke.
  useEffect(() => {
    const t = setTimeout(() => setLive(compileDraft(name, source)), 150);
    return () => clearTimeout(t);
  }, [name, source]);

  const load = async (n: string) => {
    setError(undefined);
    try {
      const doc = await sigil.policies.get(n);
      setName(n);
      setSource(doc.source);
      setDiffWith(undefined);
    } catch (e) {
      setError(e);
    }
  };
  const save = async () => {
    setError(undefined);
    try {
      const r = await sigil.policies.put(name, source);
      setSaved(`Saved version ${r.version}.`);
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  const rollback = async (version: number) => {
    setError(undefined);
    try {
      const r = await sigil.policies.rollback(name, version);
      setSaved(`Rolled back: version ${r.version} has the text of version ${version}.`);
      await load(name);
    } catch (e) {
      setError(e);
    }
  };
  const showDiff = async (version: number) => {
    try {
      const doc = await sigil.policies.get(name, { version });
      setDiffWith({ version, source: doc.source });
    } catch (e) {
      setError(e);
    }
  };
  const request = () => {
    // The same schema the server applies, so the draft sees exactly what /v1/evaluate would.
    return EvaluationRequestSchema.parse({
      action: tryReq.action,
      ...(tryReq.resource ? { resource: tryReq.resource } : {}),
      context: JSON.parse(tryReq.context),
    });
  };
  const tryDraft = () => {
    try {
      if (!live.ok) throw new Error("the draft does not compile");
      setDraftDecision(live.evaluate(request()));
    } catch (e) {
      setDraftDecision({ error: e instanceof Error ? e.message : String(e) });
    }
  };
  const diff = useMemo(
    () => (diffWith ? diffLines(diffWith.source, source) : undefined),
    [diffWith, source],
  );
  const names = ((list.value?.policies ?? []) as { name?: string; version?: number }[]).filter(
    (p) => typeof p.name === "string",
  );

  return (
    <>
      <Title>Policies</Title>
      <ErrorBox error={list.error ?? error} />
      <div class="split">
        <nav aria-label="Policy documents">
          <h2>Documents</h2>
          <ul>
            {names.map((p) => (
              <li key={p.name}>
                <button type="button" class="link" onClick={() => load(p.name!)}>
                  {p.name}
                </button>{" "}
                v{p.version}
              </li>
            ))}
          </ul>
        </nav>
        <section aria-labelledby="h-editor" class="grow">
          <h2 id="h-editor">Editor</h2>
          <label for="policy-name">Name</label>
          <input id="policy-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          <label for="policy-source">Source</label>
          <textarea
            id="policy-source"
            rows={14}
            spellcheck={false}
            value={source}
            aria-describedby="policy-problems"
            aria-invalid={!live.ok}
            onInput={(e) => setSource(e.currentTarget.value)}
          />
          <div id="policy-problems" aria-live="polite" data-testid="policy-problems">
            {live.ok ? (
              <p class="good">✓ Parses and compiles.</p>
            ) : (
              <ul class="bad">
                {live.diagnostics.map((d) => (
                  <li key={`${d.line}:${d.column}:${d.message}`}>
                    Line {d.line}, column {d.column}: {d.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
          <button type="button" onClick={save} disabled={!live.ok}>
            Save new version
          </button>
          {saved && <p role="status">{saved}</p>}
        </section>
      </div>
      <section aria-labelledby="h-versions">
        <h2 id="h-versions">Versions of {name}</h2>
        <ul>
          {(versions.value ?? []).map((v) => (
            <li key={v.version}>
              Version {v.version} <code>{v.sha256.slice(0, 12)}</code>{" "}
              <button type="button" onClick={() => showDiff(v.version)}>
                Diff with the editor
              </button>{" "}
              <button type="button" onClick={() => rollback(v.version)}>
                Roll back to {v.version}
              </button>
            </li>
          ))}
        </ul>
        {diff && diffWith && <h3>Changes from version {diffWith.version} to the editor</h3>}
        {diff && (
          <Code class="diff">
            {diff.map((d, i) => (
              <div key={i} class={d.op === "+" ? "add" : d.op === "-" ? "del" : ""}>
                {d.op} {d.line}
              </div>
            ))}
          </Code>
        )}
      </section>
      <section aria-labelledby="h-try">
        <h2 id="h-try">Try it</h2>
        <div class="row">
          <label>
            Action
            <input
              value={tryReq.action}
              onInput={(e) => setTryReq({ ...tryReq, action: e.currentTarget.value })}
            />
          </label>
          <label>
            Resource
            <input
              value={tryReq.resource}
              onInput={(e) => setTryReq({ ...tryReq, resource: e.currentTarget.value })}
            />
          </label>
        </div>
        <label for="try-context">Context (JSON)</label>
        <textarea
          id="try-context"
          rows={3}
          value={tryReq.context}
          onInput={(e) => setTryReq({ ...tryReq, context: e.currentTarget.value })}
        />
        <button type="button" onClick={tryDraft}>
          Evaluate against the draft
        </button>
        {draftDecision !== undefined && (
          <>
            <h3>Draft (in this browser)</h3>
            <Code data-testid="draft-decision">{JSON.stringify(draftDecision, null, 2)}</Code>
          </>
        )}
      </section>
    </>
  );
}
