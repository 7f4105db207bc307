// Custom compliance frameworks from configuration (docs/compliance.md "Custom frameworks"): files
// named by `[compliance] framework_files` (JSON or TOML) and the inline `frameworks_json` load
// beside the shipped ones; a bad one is refused with an error naming the file, the control and
// what is wrong; `[compliance] enforce` refuses retention below an enforced framework's minimum.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadComplianceFrameworks } from "../../functions/node/compliance-frameworks";
import {
  complianceSetup,
  FrameworkError,
  frameworkRegistry,
  parseFramework,
  parseFrameworksJson,
  retentionFloor,
} from "../../shared/compliance";
import { loadConfig } from "../../shared/config";

const dir = mkdtempSync(join(tmpdir(), "sigil-frameworks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const ACME_TOML = `id = "acme"
name = "ACME internal policy"
version = "1.2"

[[controls]]
id = "trail"
reference = "ACME-7"
title = "The trail verifies"
check = { kind = "chain-verifies" }

[[controls]]
id = "keep"
reference = "ACME-9"
title = "Keep three years"
check = { kind = "retention-minimum", minDays = 1095 }
`;

const framework = (id: string, controls: unknown[]) =>
  JSON.stringify({ id, name: id.toUpperCase(), version: "1.0", controls });
const control = (id: string, check: unknown) => ({ id, reference: "R-1", title: "T", check });

const config = (env: Record<string, string>) => loadConfig({ env });

describe("custom frameworks from files", () => {
  it("loads JSON and TOML files and frameworks_json beside the shipped ones", async () => {
    const toml = file("acme.toml", ACME_TOML);
    const json = file("beta.json", framework("beta", [control("c1", { kind: "chain-verifies" })]));
    const inline = framework("gamma", [control("g", { kind: "revoked-keys-unused" })]);
    const r = await loadComplianceFrameworks(
      config({
        SIGIL_COMPLIANCE_FRAMEWORK_FILES: JSON.stringify([toml, json]),
        SIGIL_COMPLIANCE_FRAMEWORKS_JSON: inline,
      }),
    );
    expect([...r.frameworks.keys()]).toEqual(["hipaa", "gdpr", "sox", "acme", "beta", "gamma"]);
    expect(r.frameworks.get("acme")!.controls.map((c) => c.id)).toEqual(["trail", "keep"]);
    expect(r.retentionFloorDays).toBe(0);
  });

  it("names the file, the control and the field of a bad check", async () => {
    const bad = file(
      "bad.json",
      framework("bad", [
        control("fine", { kind: "chain-verifies" }),
        control("phi-access", { kind: "retention-minimum", minDays: 0 }),
      ]),
    );
    const err = await loadComplianceFrameworks(
      config({ SIGIL_COMPLIANCE_FRAMEWORK_FILES: JSON.stringify([bad]) }),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FrameworkError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: control "phi-access" \\(controls\\[1\\]\\): check\\.minDays: `,
      ),
    );
  });

  it.each([
    [
      "an unknown check kind",
      control("x1", { kind: "vibes" }),
      /control "x1" \(controls\[0\]\): check\.kind: /,
    ],
    [
      "an unknown member in a check",
      control("x2", { kind: "chain-verifies", strict: true }),
      /control "x2" \(controls\[0\]\): check: .*strict/,
    ],
    [
      "a bad control id",
      control("Bad Id", { kind: "chain-verifies" }),
      /control "Bad Id" \(controls\[0\]\): id: must be 1-64/,
    ],
    [
      "an event type that is not one",
      control("x3", { kind: "authenticated-subject", eventTypes: ["JOB!"] }),
      /control "x3" \(controls\[0\]\): check\.eventTypes\[0\]: must be an event type/,
    ],
  ])("refuses %s, naming the control", (_n, c, msg) => {
    expect(() => parseFramework(framework("custom", [c]), "custom.json")).toThrow(msg);
  });

  it("refuses an unreadable file, bad TOML and a shipped id, naming the file", async () => {
    const missing = join(dir, "nope.toml");
    await expect(
      loadComplianceFrameworks(
        config({ SIGIL_COMPLIANCE_FRAMEWORK_FILES: JSON.stringify([missing]) }),
      ),
    ).rejects.toThrow(`${missing}: cannot read: ENOENT`);
    const broken = file("broken.toml", 'id = "x"\nname = ');
    await expect(
      loadComplianceFrameworks(
        config({ SIGIL_COMPLIANCE_FRAMEWORK_FILES: JSON.stringify([broken]) }),
      ),
    ).rejects.toThrow(`${broken}: not valid TOML`);
    const shadow = file(
      "hipaa.json",
      framework("hipaa", [control("c", { kind: "chain-verifies" })]),
    );
    await expect(
      loadComplianceFrameworks(
        config({ SIGIL_COMPLIANCE_FRAMEWORK_FILES: JSON.stringify([shadow]) }),
      ),
    ).rejects.toThrow("framework hipaa is defined twice");
  });

  it("frameworks_json: an array, with errors naming the entry; empty means none", () => {
    const good = framework("one", [control("a", { kind: "chain-verifies" })]);
    const bad = framework("two", [
      control("b", { kind: "incident-timeliness", severities: [], withinHours: 1 }),
    ]);
    expect(parseFrameworksJson("", "X")).toEqual([]);
    expect(parseFrameworksJson(`[${good}]`, "X").map((f) => f.id)).toEqual(["one"]);
    expect(() =>
      parseFrameworksJson(`[${good},${bad}]`, "SIGIL_COMPLIANCE_FRAMEWORKS_JSON"),
    ).toThrow(
      /^SIGIL_COMPLIANCE_FRAMEWORKS_JSON\[1\]: control "b" \(controls\[0\]\): check\.severities: /,
    );
    expect(() => parseFrameworksJson("[{", "X")).toThrow(/^X: not valid JSON/);
    expect(() => parseFrameworksJson(`[${Array(65).fill(good).join(",")}]`, "X")).toThrow(
      /at most 64/,
    );
  });
});

describe("retention never below an enforced framework's minimum", () => {
  it("the floor is the largest retention-minimum of the enforced frameworks", () => {
    const reg = frameworkRegistry([parseFramework(ACME_TOML, "acme.toml")]);
    expect(retentionFloor(reg, [])).toEqual({ days: 0 });
    expect(retentionFloor(reg, ["hipaa"])).toEqual({ days: 2190, by: "hipaa control retention" });
    expect(retentionFloor(reg, ["acme", "sox", "gdpr"]).days).toBe(2555);
    expect(() => retentionFloor(reg, ["nist"])).toThrow(/enforce names nist/);
  });

  it("start-up refuses HIPAA with less than six years, and allows six", async () => {
    await expect(
      loadComplianceFrameworks(
        config({ SIGIL_AUDIT_RETENTION_DAYS: "2189", SIGIL_COMPLIANCE_ENFORCE: '["hipaa"]' }),
      ),
    ).rejects.toThrow(
      "audit_retention_days = 2189 is below 2190, the minimum of hipaa control retention",
    );
    const ok = await loadComplianceFrameworks(
      config({ SIGIL_AUDIT_RETENTION_DAYS: "2190", SIGIL_COMPLIANCE_ENFORCE: '["hipaa"]' }),
    );
    expect(ok.retentionFloorDays).toBe(2190);
    // Not enforced: a short retention is allowed (the report's retention control says not_met).
    expect(complianceSetup({ retentionDays: 30, enforce: [] }, []).retentionFloorDays).toBe(0);
  });
});
