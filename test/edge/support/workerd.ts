// Runs test/edge/support/worker.ts under real workerd (Miniflare), with the production Durable
// Object classes on SQLite storage, and gives Node tests the edge adapters as ordinary port objects.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { type Result, rebuildError } from "../../../functions/edge/rpc";
import { decode, encode } from "./codec";

export interface Workerd {
  call(c: {
    port: string;
    name: string;
    method: string;
    args: unknown[];
    chain?: string;
    kid?: string;
  }): Promise<unknown>;
  dispose(): Promise<void>;
}

const entry = fileURLToPath(new URL("./worker.ts", import.meta.url));

async function start(): Promise<Workerd> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*"],
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const script = out.outputFiles[0]!.text;
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: "2026-04-01",
    durableObjects: {
      SIGIL_KEYS: { className: "KeysObject", useSQLite: true },
      SIGIL_REPLAY: { className: "ReplayObject", useSQLite: true },
      SIGIL_POLICIES: { className: "PolicyObject", useSQLite: true },
      SIGIL_PINS: { className: "TestPinsObject", useSQLite: true },
      SIGIL_AUDIT: { className: "TestAuditObject", useSQLite: true },
      SIGIL_AUDIT_PROD: { className: "AuditObject", useSQLite: true },
      SIGIL_LIMITS: { className: "LimitsObject", useSQLite: true },
      SIGIL_APPROVALS: { className: "ApprovalsObject", useSQLite: true },
      SIGIL_QUARANTINE: { className: "QuarantineObject", useSQLite: true },
      SIGIL_INCIDENTS: { className: "IncidentsObject", useSQLite: true },
      SIGIL_REPORTS: { className: "ReportsObject", useSQLite: true },
      SIGIL_ARCHIVE: { className: "ArchiveObject", useSQLite: true },
    },
  });
  await mf.ready;
  return {
    async call(c) {
      const res = await mf.dispatchFetch("http://edge.test/call", {
        method: "POST",
        body: encode(c),
      });
      const r = decode(await res.text()) as Result<unknown>;
      if (r.ok) return r.value;
      throw rebuildError(r.error);
    },
    dispose: () => mf.dispose(),
  };
}

let shared: Promise<Workerd> | undefined;

/** One workerd per test file, started on first use. */
export function workerd(): Promise<Workerd> {
  shared ??= start();
  return shared;
}

export async function disposeWorkerd(): Promise<void> {
  const w = shared;
  shared = undefined;
  if (w) await (await w).dispose();
}

let counter = 0;
/** A name no other object in this run has: a fresh, empty Durable Object. */
export const freshName = (what: string): string =>
  `${what}-${process.pid}-${counter++}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * A port implemented by the edge adapter running inside workerd. `props` are plain properties
 * (e.g. the audit log's `chain`); every other member is a remote method.
 */
export function remotePort<T extends object>(
  port: string,
  name: string,
  opts: { chain?: string; kid?: string; props?: Record<string, unknown> } = {},
): T {
  return new Proxy({} as T, {
    get(_t, prop) {
      if (opts.props && typeof prop === "string" && prop in opts.props) return opts.props[prop];
      // Not a thenable, not a symbol-keyed protocol object.
      if (typeof prop !== "string" || prop === "then" || prop === "toJSON") return undefined;
      return async (...args: unknown[]) =>
        (await workerd()).call({
          port,
          name,
          method: prop,
          args,
          ...(opts.chain ? { chain: opts.chain } : {}),
          ...(opts.kid ? { kid: opts.kid } : {}),
        });
    },
  });
}
