// Reads a Prometheus exposition with a real parser (parse-prometheus-text-format) and looks up
// samples by name and labels.
import parse, { type PromFamily } from "parse-prometheus-text-format";
import { signRequest } from "../../shared/httpsig";
import type { TestKey } from "./targets";

/** A GET, RFC 9421-signed with `key` when given (unsigned otherwise). */
export async function signedGet(url: string, key?: TestKey): Promise<Response> {
  const headers: Record<string, string> = {};
  if (key)
    Object.assign(
      headers,
      await signRequest({ method: "GET", url, headers, body: null }, key.signer, {
        keyid: key.kid,
      }),
    );
  return fetch(url, { headers });
}

export interface Exposition {
  families: PromFamily[];
  /** A counter's or gauge's value for exactly these labels; 0 when the series does not exist. */
  value(name: string, labels?: Record<string, string>): number;
  /**
   * A histogram's observation count for exactly these labels (in this order); 0 when absent.
   * Read from its `_count` line: the parser flattens the series of a labelled histogram into one.
   */
  count(name: string, labels?: Record<string, string>): number;
  /** A histogram's sum for exactly these labels, from its `_sum` line; 0 when absent. */
  sum(name: string, labels?: Record<string, string>): number;
  /** The sum of every sample of a counter or gauge, whatever its labels. */
  total(name: string): number;
  /** Every label value of every sample (for cardinality checks). */
  labelValues(): string[];
}

const same = (a: Record<string, string> | undefined, b: Record<string, string>) => {
  const x = a ?? {};
  const keys = new Set([...Object.keys(x), ...Object.keys(b)]);
  for (const k of keys) if (x[k] !== b[k]) return false;
  return true;
};

export function exposition(text: string): Exposition {
  const families = parse(text);
  const sample = (name: string, labels: Record<string, string>) =>
    families.find((f) => f.name === name)?.metrics.find((m) => same(m.labels, labels));
  return {
    families,
    value: (name, labels = {}) => Number(sample(name, labels)?.value ?? 0),
    count: (name, labels = {}) => histogramLine(text, `${name}_count`, labels),
    sum: (name, labels = {}) => histogramLine(text, `${name}_sum`, labels),
    total: (name) =>
      (families.find((f) => f.name === name)?.metrics ?? []).reduce(
        (a, m) => a + Number(m.value ?? 0),
        0,
      ),
    labelValues: () =>
      families.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {}))),
  };
}

function histogramLine(text: string, series: string, labels: Record<string, string>): number {
  const sel = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(",");
  const line = `${series}${sel ? `{${sel}}` : ""} `;
  const found = text.split("\n").find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length)) : 0;
}
