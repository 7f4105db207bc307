// The console is just another client of the signed API (docs/console.md): the SDK's client with
// the operator's in-browser signer, on this page's origin. No cookie, no session.

import { Sigil } from "../../sdk";
import type { Signer } from "../../shared/httpsig";
import { signRequest } from "../../shared/httpsig";

export function clientFor(signer: Signer | undefined): Sigil {
  return new Sigil({ baseUrl: location.origin, ...(signer ? { signer } : {}), retries: 0 });
}

/** A signed GET of a non-JSON route (GET /metrics is Prometheus text). */
export async function signedText(signer: Signer, path: string): Promise<string> {
  const url = new URL(path, location.origin);
  const headers = new Headers({ accept: "text/plain" });
  const sig = await signRequest({ method: "GET", url, headers }, signer, { keyid: signer.kid });
  for (const [k, v] of Object.entries(sig)) headers.set(k, v);
  const res = await fetch(url, { headers });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.text();
}

/** Sums of the Prometheus counters the overview shows, by metric name (labels summed over). */
export function sumMetrics(text: string, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || !names.includes(m[1]!)) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) out[m[1]!] = (out[m[1]!] ?? 0) + v;
  }
  return out;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
