// The console's shell (docs/console.md): the key gate, the navigation, hash routes. Every page is
// a signed-API client; nothing here keeps a session.
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Sigil } from "../../sdk";
import type { Signer } from "../../shared/httpsig";
import { clientFor, errorText } from "./api";
import { forgetKey, importKeyFile, loadSigner } from "./keystore";
import { ApprovalsPage } from "./pages/approvals";
import { AuditPage } from "./pages/audit";
import { IncidentsPage } from "./pages/incidents";
import { JobsPage } from "./pages/jobs";
import { KeysPage } from "./pages/keys";
import { OverviewPage } from "./pages/overview";
import { PoliciesPage } from "./pages/policies";

export interface PageProps {
  sigil: Sigil;
  signer: Signer;
  /** The query part of the hash route (#/audit?type=job.finished). */
  params: URLSearchParams;
}

const PAGES = [
  { path: "overview", title: "Overview", Page: OverviewPage },
  { path: "audit", title: "Audit", Page: AuditPage },
  { path: "jobs", title: "Jobs", Page: JobsPage },
  { path: "approvals", title: "Approvals", Page: ApprovalsPage },
  { path: "incidents", title: "Incidents", Page: IncidentsPage },
  { path: "policies", title: "Policies", Page: PoliciesPage },
  { path: "keys", title: "Keys and pins", Page: KeysPage },
] as const;

function route(): { path: string; params: URLSearchParams } {
  const h = location.hash.replace(/^#\/?/, "");
  const [path = "", query = ""] = h.split("?", 2);
  return { path: path || "overview", params: new URLSearchParams(query) };
}

function KeyImport({ onKey }: { onKey: (s: Signer) => void }) {
  const [error, setError] = useState<string>();
  const onFile = async (e: Event) => {
    const f = (e.currentTarget as HTMLInputElement).files?.[0];
    if (!f) return;
    try {
      onKey(await importKeyFile(await f.text()));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <main id="main" class="narrow">
      <h1>Sign in with your key</h1>
      <p>
        The console signs every request in this browser with your Ed25519 key. Import the key file
        once (the JSON file the CLI uses, such as <code>.sigil/admin-key.json</code>); it is kept in
        this browser as a key that cannot be read back, and never sent anywhere.
      </p>
      <label for="keyfile">Key file</label>
      <input id="keyfile" type="file" accept=".json,application/json" onChange={onFile} />
      {error && (
        <p role="alert" class="bad">
          {error}
        </p>
      )}
    </main>
  );
}

function App() {
  const [signer, setSigner] = useState<Signer | null>();
  const [r, setRoute] = useState(route);
  const heading = useRef<HTMLElement>(null);
  // One client per key: pages re-run their loads when it changes, not on every render.
  const sigil = useMemo(() => (signer ? clientFor(signer) : undefined), [signer]);
  useEffect(() => {
    loadSigner().then(
      (s) => setSigner(s ?? null),
      () => setSigner(null),
    );
    const on = () => setRoute(route());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    // A route change moves focus to the page, as a page load would.
    heading.current?.querySelector("h1")?.focus();
  }, [r.path]);
  if (signer === undefined) return <p>Loading…</p>;
  if (signer === null || !sigil) return <KeyImport onKey={setSigner} />;
  const page = PAGES.find((p) => p.path === r.path) ?? PAGES[0];
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">Sigil</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <a href={`#/${p.path}`} aria-current={p === page ? "page" : undefined}>
                  {p.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          key <code>{signer.kid.slice(0, 12)}…</code>{" "}
          <button
            type="button"
            onClick={async () => {
              await forgetKey();
              setSigner(null);
            }}
          >
            Forget key
          </button>
        </span>
      </header>
      <main id="main" ref={heading} tabIndex={-1}>
        <page.Page key={page.path} sigil={sigil} signer={signer} params={r.params} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
