// `sigil compliance` against a real Node API (docs/cli.md "Compliance"): an auditor generates a
// report (JSON and HTML written), shows it, and verifies it offline and against today's log; a
// tampered report, or a cited event changed in it, exits 1 with the reason; bad input exits 2.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publicJwk } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { cliRunner } from "../support/cli";
import { registeredKey, startTarget, type Target } from "../support/targets";

let t: Target;
let dir: string;
let keyFile: string;

const run = cliRunner(() => ({ cwd: dir, url: t.url }));
const sigil = (args: string[]) => run(args, { SIGIL_KEY_FILE: keyFile });

beforeAll(async () => {
  t = await startTarget("node");
  dir = await mkdtemp(join(tmpdir(), "sigil-ccli-"));
  const admin = t.client(t.admin);
  const auditor = await registeredKey(admin, "auditor", "auditor-cli");
  keyFile = join(dir, "auditor.json");
  await writeFile(
    keyFile,
    JSON.stringify({
      kid: auditor.kid,
      secretKey: toBase64Url(auditor.secretKey),
      publicJwk: publicJwk(auditor.publicKey, { kid: auditor.kid }),
    }),
    { mode: 0o600 },
  );
  await admin.audit.append({ eventType: "tool.invoked", details: { tool: "search" } });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("sigil compliance", () => {
  let reportPath: string;
  let keysPath: string;

  it("generate writes the signed report and its HTML page; show reads it back", async () => {
    reportPath = join(dir, "report.json");
    const htmlPath = join(dir, "report.html");
    const g = await sigil([
      "compliance",
      "generate",
      "--framework",
      "sox",
      "--from",
      new Date(Date.now() - 3600_000).toISOString(),
      "--out",
      reportPath,
      "--html",
      htmlPath,
    ]);
    expect(g.stderr).toBe("");
    expect(g.code).toBe(0);
    expect(g.stdout).toMatch(/segregation-of-duties/);
    const report = JSON.parse(await readFile(reportPath, "utf8"));
    expect(report).toMatchObject({ type: "sigil.compliance.report", framework: "sox" });
    expect(await readFile(htmlPath, "utf8")).toMatch(/^<!doctype html>/);
    const s = await sigil(["compliance", "show", report.reportId, "--json"]);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toEqual(report);
    // Never over an existing file.
    const again = await sigil(["compliance", "show", report.reportId, "--out", reportPath]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/cannot write .*EEXIST/);
  });

  it("verify: ok offline with the key set, and consistent with today's log", async () => {
    keysPath = join(dir, "keys.json");
    await writeFile(keysPath, JSON.stringify(await t.client(t.admin).wellKnownKeys()));
    const offline = await sigil(["compliance", "verify", reportPath, "--keys", keysPath]);
    expect(offline).toMatchObject({ code: 0, stdout: "valid\n" });
    await t.client(t.admin).audit.append({ eventType: "tool.invoked", details: { later: true } });
    const latest = await sigil(["compliance", "verify", reportPath, "--latest", "--json"]);
    expect(latest.code).toBe(0);
    expect(JSON.parse(latest.stdout)).toEqual({ valid: true, errors: [] });
  });

  it("verify: a tampered report exits 1 with the reason", async () => {
    const report = JSON.parse(await readFile(reportPath, "utf8"));
    const bad = join(dir, "tampered.json");
    await writeFile(bad, JSON.stringify({ ...report, score: 100 - report.score || 1 }));
    const r = await sigil(["compliance", "verify", bad, "--keys", keysPath]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("invalid: report signature does not verify");
  });

  it("verify: a cited event changed in the report fails its inclusion proof", async () => {
    const report = JSON.parse(await readFile(reportPath, "utf8"));
    expect(report.evidence.length).toBeGreaterThan(0);
    report.evidence[0].event.agentId = "someone-else";
    const bad = join(dir, "event-changed.json");
    await writeFile(bad, JSON.stringify(report));
    const r = await sigil(["compliance", "verify", bad, "--keys", keysPath]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`invalid: evidence ${report.evidence[0].index}: not in the log`);
  });

  it("unusable input exits 2 with a one-line error", async () => {
    const r = await sigil(["compliance", "verify", join(dir, "missing.json"), "--keys", keysPath]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^sigil: .*missing\.json: ENOENT/);
    const half = await sigil(["compliance", "verify", reportPath, "--checkpoint", keysPath]);
    expect(half.code).toBe(2);
    const date = await sigil([
      "compliance",
      "generate",
      "--framework",
      "sox",
      "--from",
      "yesterday",
    ]);
    expect(date.code).toBe(2);
    expect(date.stderr).toContain("--from is not a date");
  });
});
