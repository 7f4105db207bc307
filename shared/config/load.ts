// Loads settings: defaults, then the TOML document, then environment variables.
// Pure: the caller reads the file and passes its text, so this runs on workerd too.
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { configSchema, type SigilConfig } from "./schema";

export interface ConfigIssue {
  /** dotted settings path, e.g. "security.default_sandbox_tier" */
  path: string;
  message: string;
  /** where the bad value came from: "sigil.toml:12", "env SIGIL_PORT", or "default" */
  source: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(
      `invalid configuration:\n${issues.map((i) => `  - ${i.path}: ${i.message} (${i.source})`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export interface ConfigSources {
  env?: Record<string, string | undefined>;
  toml?: { path: string; text: string };
}

type Leaf = { path: [string, string]; kind: string };

function unwrapKind(schema: z.ZodType): string {
  let def = schema._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
  while (def.innerType || (def.type === "pipe" && def.in)) {
    const next = (def.innerType ?? def.in) as z.ZodType;
    def = next._zod.def as typeof def;
  }
  return def.type;
}

function sectionShape(section: string): Record<string, z.ZodType> {
  const s = configSchema.shape[section as keyof typeof configSchema.shape] as z.ZodType;
  let def = s._zod.def as {
    type: string;
    innerType?: z.ZodType;
    shape?: Record<string, z.ZodType>;
  };
  while (def.innerType) def = def.innerType._zod.def as typeof def;
  return def.shape ?? {};
}

const leaves: Leaf[] = Object.keys(configSchema.shape).flatMap((section) =>
  Object.entries(sectionShape(section)).map(
    ([key, schema]): Leaf => ({ path: [section, key], kind: unwrapKind(schema) }),
  ),
);

/** Every environment name that sets a leaf; several names may alias one leaf. */
export const envNames: ReadonlyMap<string, [string, string]> = (() => {
  const m = new Map<string, [string, string]>();
  for (const { path } of leaves) {
    const [section, key] = path;
    const up = key.toUpperCase();
    if (section === "security") {
      m.set(`SIGIL_${up}`, path);
      m.set(`SYMBIONT_${up}`, path);
    } else if (section === "tofu") {
      m.set(`SIGIL_TOFU_${up}`, path);
      m.set(`SYMBIONT_TOFU_${up}`, path);
    } else {
      m.set(`SIGIL_${section.toUpperCase()}_${up}`, path);
    }
  }
  // Names from docs/http-api.md ("Running it") and the security model's own variable names.
  const extra: Record<string, [string, string]> = {
    PORT: ["server", "port"],
    SIGIL_PORT: ["server", "port"],
    SIGIL_HOST: ["server", "host"],
    SIGIL_DATA_DIR: ["server", "data_dir"],
    SIGIL_LOG_LEVEL: ["server", "log_level"],
    REDIS_URL: ["redis", "url"],
    SIGIL_ADMIN_KEYS: ["auth", "admin_keys"],
    SIGIL_GATEWAY_URL: ["sandbox", "gateway_url"],
    SIGIL_API_URL: ["sandbox", "api_url"],
    SIGIL_KEY_STORE: ["security", "key_store_type"],
    SYMBIONT_POLICY_ENFORCEMENT: ["security", "policy_enforcement_mode"],
    SYMBIONT_AUDIT_STORAGE: ["security", "audit_storage_path"],
    SYMBIONT_TOFU_ENABLED: ["tofu", "enabled"],
  };
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
})();

const kindOf = new Map(leaves.map((l) => [l.path.join("."), l.kind]));

function coerceEnv(name: string, raw: string, kind: string): unknown {
  const v = raw.trim();
  switch (kind) {
    case "boolean":
      if (/^(true|1|yes|on)$/i.test(v)) return true;
      if (/^(false|0|no|off)$/i.test(v)) return false;
      return raw; // let the schema reject it with its own message
    case "number":
      return v !== "" && Number.isFinite(Number(v)) ? Number(v) : raw;
    case "array":
    case "object":
      try {
        return JSON.parse(v);
      } catch {
        throw new ConfigError([{ path: name, message: "must be JSON", source: `env ${name}` }]);
      }
    default:
      return raw;
  }
}

/** Finds the 1-based line of `key` inside table `[section]` of a TOML text, for error messages. */
function lineOf(text: string, section: string, key?: string): number | undefined {
  const lines = text.split(/\r?\n/);
  let current = "";
  let sectionLine: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const header = /^\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(line);
    if (header) {
      current = header[1]!;
      if (current === section) sectionLine = i + 1;
      continue;
    }
    if (current === section && key && new RegExp(`^"?${key}"?\\s*=`).test(line)) return i + 1;
  }
  return sectionLine;
}

export function loadConfig(sources: ConfigSources = {}): SigilConfig {
  const env = sources.env ?? {};
  const doc: Record<string, Record<string, unknown>> = {};
  const origin = new Map<string, string>();

  if (sources.toml) {
    const { path, text } = sources.toml;
    let parsed: Record<string, unknown>;
    try {
      parsed = parseToml(text) as Record<string, unknown>;
    } catch (e) {
      const where = e instanceof TomlError ? `${path}:${e.line}:${e.column}` : path;
      const msg = e instanceof Error ? e.message.split("\n")[0]! : String(e);
      throw new ConfigError([
        { path: "(file)", message: `TOML syntax error: ${msg}`, source: where },
      ]);
    }
    for (const [section, table] of Object.entries(parsed)) {
      if (table === null || typeof table !== "object" || Array.isArray(table)) {
        doc[section] = table as Record<string, unknown>; // schema reports the wrong type
        continue;
      }
      doc[section] = { ...(table as Record<string, unknown>) };
      for (const key of Object.keys(table)) {
        const line = lineOf(text, section, key);
        origin.set(`${section}.${key}`, line ? `${path}:${line}` : path);
      }
      const line = lineOf(text, section);
      origin.set(section, line ? `${path}:${line}` : path);
    }
  }

  const fromEnv = new Map<string, { name: string; raw: string }>();
  const issues: ConfigIssue[] = [];
  for (const [name, path] of envNames) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const dotted = path.join(".");
    const prev = fromEnv.get(dotted);
    if (prev && prev.raw !== raw) {
      issues.push({
        path: dotted,
        message: `${prev.name} and ${name} disagree ("${prev.raw}" vs "${raw}")`,
        source: `env ${prev.name}, env ${name}`,
      });
      continue;
    }
    fromEnv.set(dotted, { name, raw });
    const [section, key] = path;
    let target = doc[section];
    if (!target || typeof target !== "object" || Array.isArray(target)) {
      target = {};
      doc[section] = target;
    }
    target[key] = coerceEnv(name, raw, kindOf.get(dotted) ?? "string");
    origin.set(dotted, `env ${name}`);
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const result = configSchema.safeParse(doc);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const keys = issue.path.map(String);
      // unrecognized_keys names the offending keys in the issue, not the path.
      const unknown = issue.code === "unrecognized_keys" ? issue.keys : [];
      const path = [...keys, ...(unknown.length === 1 ? unknown : [])].join(".") || "(root)";
      const message =
        issue.code === "unrecognized_keys"
          ? `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}; allowed: ${allowedKeys(keys[0]).join(", ")}`
          : describe(issue);
      let source = "default";
      for (let i = keys.length + unknown.length; i > 0; i--) {
        const p = [...keys, ...unknown].slice(0, i).join(".");
        const o = origin.get(p);
        if (o) {
          source = o;
          break;
        }
      }
      return { path, message, source };
    }),
  );
}

function allowedKeys(section: string | undefined): string[] {
  return section ? Object.keys(sectionShape(section)) : Object.keys(configSchema.shape);
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_value") {
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  if (issue.code === "invalid_type") {
    return `expected ${issue.expected}${issue.message.includes("received") ? `, ${issue.message.split(",").pop()?.trim()}` : ""}`;
  }
  return issue.message;
}
