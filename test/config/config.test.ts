import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../shared/config";
import { repoRoot } from "../support/vectors";

const examplePath = join(repoRoot, "test/config/example.toml");
const example = readFileSync(examplePath, "utf8");

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config loader", () => {
  it("defaults are the secure ones", () => {
    const c = loadConfig();
    expect(c.security.policy_enforcement_mode).toBe("strict");
    expect(c.security.default_sandbox_tier).toBe("gvisor");
    expect(c.security.network_isolation).toBe(true);
    expect(c.security.audit_enabled).toBe(true);
    expect(c.security.emergency_override_enabled).toBe(false);
    expect(c.tofu.automatic_key_pinning).toBe(false);
    expect(c.tofu.key_verification_required).toBe(true);
    expect(c.sandbox.pids).toBe(128);
    expect(c.sandbox.memory_mb).toBe(512);
    expect(c.sandbox.cpus).toBe(0.5);
    expect(c.server.port).toBe(8787);
    expect(c.redis.url).toBe("redis://127.0.0.1:6379");
    expect(c.auth.clock_skew_seconds).toBe(300);
  });

  it("loads the security model's TOML example with its exact keys", () => {
    const c = loadConfig({ toml: { path: examplePath, text: example } });
    expect(c.security.crypto_provider).toBe("ring");
    expect(c.security.hsm_enabled).toBe(true);
    expect(c.security.hsm_config_path).toBe("/etc/symbiont/hsm.conf");
    expect(c.security.audit_retention_days).toBe(2555);
    expect(c.security.certificate_pinning).toBe(true);
    expect(c.security.policy_violation_action).toBe("deny_and_alert");
    expect(c.tofu.trust_on_first_use_timeout_hours).toBe(24);
  });

  it("an unknown key names the key, the file and line, and what is allowed", () => {
    const text = `${example.replace("[tofu]", 'polcy_enforcement_mode = "strict"\n[tofu]')}`;
    const [issue] = issuesOf(() => loadConfig({ toml: { path: "sigil.toml", text } }));
    expect(issue!.path).toBe("security.polcy_enforcement_mode");
    expect(issue!.message).toMatch(
      /unknown key "polcy_enforcement_mode"; allowed: .*policy_enforcement_mode/,
    );
    const line = text.split("\n").findIndex((l) => l.startsWith("polcy_")) + 1;
    expect(issue!.source).toBe(`sigil.toml:${line}`);
  });

  it("the cache bounds: 1 s by default, 0 turns a cache off, a negative or non-integer value is refused", () => {
    const d = loadConfig();
    expect([d.auth.key_cache_ms, d.policy.revision_cache_ms]).toEqual([1000, 1000]);
    const off = loadConfig({
      env: { SIGIL_AUTH_KEY_CACHE_MS: "0", SIGIL_POLICY_REVISION_CACHE_MS: "0" },
    });
    expect([off.auth.key_cache_ms, off.policy.revision_cache_ms]).toEqual([0, 0]);
    const [neg] = issuesOf(() => loadConfig({ env: { SIGIL_AUTH_KEY_CACHE_MS: "-1" } }));
    expect([neg!.path, neg!.source]).toEqual(["auth.key_cache_ms", "env SIGIL_AUTH_KEY_CACHE_MS"]);
    const [bad] = issuesOf(() =>
      loadConfig({ toml: { path: "s.toml", text: '[policy]\nrevision_cache_ms = "soon"\n' } }),
    );
    expect([bad!.path, bad!.source]).toEqual(["policy.revision_cache_ms", "s.toml:2"]);
  });

  it("an unknown table is an error too", () => {
    const [issue] = issuesOf(() =>
      loadConfig({ toml: { path: "x.toml", text: "[securty]\nfoo = 1\n" } }),
    );
    expect(issue!.message).toMatch(/unknown key "securty"/);
  });

  it("a wrong type names the key and the expected type", () => {
    const text = example.replace("audit_retention_days = 2555", 'audit_retention_days = "long"');
    const [issue] = issuesOf(() => loadConfig({ toml: { path: "s.toml", text } }));
    expect(issue!.path).toBe("security.audit_retention_days");
    expect(issue!.message).toMatch(/expected number/);
    expect(issue!.source).toMatch(/^s\.toml:\d+$/);
  });

  it("an impossible value says what is allowed", () => {
    const text = example.replace('default_sandbox_tier = "gvisor"', 'default_sandbox_tier = "vm"');
    const [issue] = issuesOf(() => loadConfig({ toml: { path: "s.toml", text } }));
    expect(issue!.path).toBe("security.default_sandbox_tier");
    expect(issue!.message).toBe('must be one of "docker", "gvisor"');
  });

  it("out-of-range numbers and inconsistent settings are rejected", () => {
    expect(issuesOf(() => loadConfig({ env: { PORT: "70000" } }))[0]!.path).toBe("server.port");
    const risk = issuesOf(() =>
      loadConfig({
        toml: { path: "r.toml", text: "[risk]\nmedium_threshold = 0.8\nhigh_threshold = 0.5\n" },
      }),
    );
    expect(risk[0]!.message).toMatch(/medium_threshold must be below high_threshold/);
    const hsm = issuesOf(() => loadConfig({ env: { SIGIL_HSM_ENABLED: "true" } }));
    expect(hsm[0]!.message).toMatch(/hsm_config_path/);
    for (const env of [{ SIGIL_KEY_STORE_TYPE: "hsm" }, { SIGIL_KEY_STORE: "hsm" }]) {
      const store = issuesOf(() => loadConfig({ env }));
      expect(store[0]).toMatchObject({ path: "security.hsm_config_path" });
    }
    const named = loadConfig({ env: { SIGIL_KEY_STORE: "hsm", SIGIL_HSM_CONFIG_PATH: "/h.json" } });
    expect(named.security.key_store_type).toBe("hsm");
  });

  it("refuses to turn the audit trail off", () => {
    const text = example.replace("audit_enabled = true", "audit_enabled = false");
    const [issue] = issuesOf(() => loadConfig({ toml: { path: "s.toml", text } }));
    expect(issue!.path).toBe("security.audit_enabled");
    expect(issue!.message).toMatch(/cannot be disabled/);
  });

  it("reports TOML syntax errors with line and column", () => {
    const [issue] = issuesOf(() =>
      loadConfig({ toml: { path: "bad.toml", text: "[security]\nfoo = = 1\n" } }),
    );
    expect(issue!.source).toMatch(/^bad\.toml:2:\d+$/);
  });

  it("environment overrides the file; SYMBIONT_* names are aliases of SIGIL_* ones", () => {
    const c = loadConfig({
      toml: { path: examplePath, text: example },
      env: {
        SYMBIONT_POLICY_ENFORCEMENT: "permissive",
        SYMBIONT_DEFAULT_SANDBOX_TIER: "docker",
        SYMBIONT_AUDIT_STORAGE: "/tmp/audit",
        SYMBIONT_AUDIT_RETENTION_DAYS: "2190",
        SYMBIONT_TOFU_ENABLED: "false",
        SIGIL_TLS_MIN_VERSION: "1.2",
        PORT: "9000",
        REDIS_URL: "redis://10.0.0.1:6380",
        SIGIL_ADMIN_KEYS: '[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1"}]',
      },
    });
    expect(c.security.policy_enforcement_mode).toBe("permissive");
    expect(c.security.default_sandbox_tier).toBe("docker");
    expect(c.security.audit_storage_path).toBe("/tmp/audit");
    expect(c.security.audit_retention_days).toBe(2190);
    expect(c.security.tls_min_version).toBe("1.2");
    expect(c.tofu.enabled).toBe(false);
    expect(c.server.port).toBe(9000);
    expect(c.redis.url).toBe("redis://10.0.0.1:6380");
    expect(c.auth.admin_keys[0]!.kid).toBe("k1");
    expect(
      loadConfig({ env: { SIGIL_POLICY_ENFORCEMENT_MODE: "permissive" } }).security
        .policy_enforcement_mode,
    ).toBe("permissive");
  });

  it("two aliases that disagree are an error, not a silent pick", () => {
    const [issue] = issuesOf(() =>
      loadConfig({
        env: { SIGIL_DEFAULT_SANDBOX_TIER: "gvisor", SYMBIONT_DEFAULT_SANDBOX_TIER: "docker" },
      }),
    );
    expect(issue!.path).toBe("security.default_sandbox_tier");
    expect(issue!.message).toMatch(/disagree/);
  });

  it("a bad environment value names the variable", () => {
    const [issue] = issuesOf(() => loadConfig({ env: { SIGIL_NETWORK_ISOLATION: "maybe" } }));
    expect(issue!.path).toBe("security.network_isolation");
    expect(issue!.source).toBe("env SIGIL_NETWORK_ISOLATION");
    expect(issuesOf(() => loadConfig({ env: { SIGIL_ADMIN_KEYS: "[not json" } }))[0]!.message).toBe(
      "must be JSON",
    );
  });
});
