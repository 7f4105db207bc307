// The web console in a real browser (docs/console.md): Debian's chromium against the API and a
// worker started as `npm start` does. One flow per page: import the key, health, a policy with an
// error shown at its line and column, fixed, saved and evaluated, a job's output arriving live,
// every audit event verified in the browser, then one event tampered with in Redis and exactly
// that one marked. axe-core on every page (light and dark); a screenshot of each page.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Redis } from "ioredis";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { composeNode, type NodeDeps } from "../../functions/node/compose";
import { loadNodeConfig } from "../../platform/node/config";
import { Sigil, SigilError } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { generateEd25519KeyPair, publicJwk, uuidV7 } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import {
  DetectionEngine,
  DetectionRunner,
  Responder,
  violationAction,
} from "../../shared/incidents";
import { silentLogger } from "../../shared/log";
import { type PolicyError, parse } from "../../shared/policy";
import { submitLowRisk } from "../jobs/support/harness";
import { connectRedis } from "../support/redis";
import { type Stack, startStack } from "../support/stack";
import { buildConsole, launch, screenshot, seriousViolations } from "./support";

// Incident detection with a small burst threshold, and auth.failed aggregated over a short window
// so the burst reaches the trail quickly.
const STACK_ENV = {
  SIGIL_INCIDENTS_FAILED_AUTH_THRESHOLD: "3",
  SIGIL_LIMITS_AUDIT_WINDOW_MS: "1000",
};

let stack: Stack;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const cspViolations: string[] = [];

const BROKEN = `policy jobs {
  allow: execute(sandbox)
  allow: read(reports) if user.team ==
}
`;
const FIXED = `policy jobs {
  allow: execute(sandbox)
  allow: read(reports) if user.team == "ops"
}
`;

async function goto(route: string): Promise<void> {
  await page.goto(`${stack.base}/console#/${route}`);
  await page.locator("h1").first().waitFor();
}

/** An agent key (code trust 1, so a busybox job scores low risk) and its client. */
async function newAgent(admin: Sigil, subject: string): Promise<Sigil> {
  const kp = await generateEd25519KeyPair();
  await admin.keys.create({
    role: "agent",
    subject,
    publicKey: toBase64Url(kp.publicKey),
    trust: 1,
  });
  return new Sigil({ baseUrl: stack.base, secretKey: kp.secretKey });
}

async function accessible(name: string): Promise<void> {
  expect(await seriousViolations(page), name).toEqual([]);
  await page.emulateMedia({ colorScheme: "dark" });
  expect(await seriousViolations(page), `${name} (dark)`).toEqual([]);
  await screenshot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: "light" });
  await screenshot(page, name);
}

/**
 * Incident detection as a second API process runs it (docs/incidents.md "Exactly once"): the
 * stack's own trail and incident store, composed in this process from the stack's data directory
 * and Redis prefix. Exactly once holds whoever else steps (the runner's compare-and-set decides).
 */
async function detectionProcess(): Promise<{ drain(): Promise<number>; close(): Promise<void> }> {
  const config = loadNodeConfig({
    ...process.env,
    ...STACK_ENV,
    SIGIL_DATA_DIR: stack.dataDir,
    SIGIL_REDIS_PREFIX: stack.prefix,
  });
  const redis: Redis = connectRedis();
  let deps: NodeDeps;
  try {
    deps = await composeNode({
      config,
      redis,
      log: silentLogger,
      health: [],
      reconcile: false,
      sweepHeld: false,
    });
  } catch (e) {
    redis.disconnect();
    throw e;
  }
  const store = deps.incidents;
  if (!store) throw new Error("the Node composition has no incident store");
  // The responder as the API composes it: isolation through the quarantine service (audited,
  // the API's cache told over Redis), the evidence bundle signed with the service key.
  const responder = new Responder({
    store,
    evidence: deps.audit,
    signer: deps.serviceSigner,
    ...(deps.quarantine ? { isolation: deps.quarantine } : {}),
    policyViolationAction: violationAction(config.security.policy_violation_action),
    emergencyScope: config.incidents.emergency_scope,
  });
  const runner: DetectionRunner = new DetectionRunner({
    store,
    audit: deps.audit,
    engine: new DetectionEngine(
      {
        incidents: config.incidents,
        sandboxEscapeDetection: config.security.sandbox_escape_detection,
      },
      uuidV7,
    ),
    batch: 200,
    onChange: async (i) => {
      if (await responder.respond(i.record.incidentId)) await runner.finish(i.record.incidentId);
    },
  });
  return {
    drain: () => runner.drain(),
    async close() {
      await deps.close();
      redis.disconnect();
    },
  };
}

beforeAll(async () => {
  buildConsole();
  [stack, browser] = await Promise.all([startStack("console", STACK_ENV), launch()]);
  context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  page = await context.newPage();
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
}, 180_000);

afterEach(async (ctx) => {
  // What the page said when a step timed out: the failure is otherwise just a locator.
  if (ctx.task.result?.state === "fail" && page)
    console.error(`page at failure:\n${await page.locator("body").textContent()}`);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
}, 60_000);

describe("the web console", () => {
  it("is served with a strict CSP and no cookie, on Node", async () => {
    const res = await fetch(`${stack.base}/console`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(res.headers.get("set-cookie")).toBeNull();
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect((await fetch(`${stack.base}/console/assets/..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${stack.base}/console/index.html`)).status).toBe(404);
  });

  it("imports the key file once and shows health", async () => {
    await goto("overview");
    await expect.poll(() => page.locator("h1").textContent()).toBe("Sign in with your key");
    await accessible("key-import");
    const keyFile = await readFile(join(stack.dataDir, "admin-key.json"));
    await page
      .locator("#keyfile")
      .setInputFiles({ name: "admin-key.json", mimeType: "application/json", buffer: keyFile });
    await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();
    // Kept as a non-extractable CryptoKey: a reload signs without the file.
    const stored = await page.evaluate(
      () =>
        new Promise<string>((resolve) => {
          const r = indexedDB.open("sigil-console");
          r.onsuccess = () => {
            const g = r.result.transaction("keys").objectStore("keys").get("operator");
            g.onsuccess = () => {
              const k = (g.result as { key: CryptoKey }).key;
              resolve(`${k.type} ${k.extractable} ${JSON.stringify(g.result).includes("secret")}`);
            };
          };
        }),
    );
    expect(stored).toBe("private false false");
    await page.reload();
    await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();
    await page.locator("dd").first().filter({ hasText: /^\d+$/ }).waitFor();
    await accessible("overview");
  });

  it("shows a policy error at its line and column, then saves the fix and evaluates it", async () => {
    let diag: { line: number; column: number } | undefined;
    try {
      parse(BROKEN);
    } catch (e) {
      diag = (e as PolicyError).diagnostics[0];
    }
    expect(diag).toBeDefined();
    await goto("policies");
    await page.locator("#policy-name").fill("sandbox");
    await page.locator("#policy-source").fill(BROKEN);
    const problems = page.getByTestId("policy-problems");
    await problems.filter({ hasText: `Line ${diag?.line}, column ${diag?.column}` }).waitFor();
    await expect
      .poll(() => page.getByRole("button", { name: "Save new version" }).isDisabled())
      .toBe(true);
    await accessible("policies-error");
    await page.locator("#policy-source").fill(FIXED);
    await problems.filter({ hasText: "Parses and compiles" }).waitFor();
    await page.getByRole("button", { name: "Save new version" }).click();
    await page.getByRole("status").filter({ hasText: "Saved version 1" }).waitFor();
    await page.getByRole("button", { name: "Evaluate against the draft" }).click();
    await page.getByTestId("draft-decision").filter({ hasText: '"decision": "allow"' }).waitFor();
    // A second version, then the diff against version 1 and a rollback to it.
    await page.locator("#policy-source").fill(`${FIXED}// second\n`);
    await page.getByRole("button", { name: "Save new version" }).click();
    await page.getByRole("status").filter({ hasText: "Saved version 2" }).waitFor();
    await page.getByRole("button", { name: "Diff with the editor" }).first().waitFor();
    await page.getByRole("button", { name: "Diff with the editor" }).first().click();
    await page.locator(".diff .add").filter({ hasText: "// second" }).waitFor();
    await page.getByRole("button", { name: "Roll back to 1" }).click();
    await page.getByRole("status").filter({ hasText: "has the text of version 1" }).waitFor();
    await accessible("policies");
  });

  it("shows a running job's output as it arrives, with the result's signature checked", async () => {
    // Only agents submit jobs: one does (low risk, runc), the operator opens it in the console.
    const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
    const agent = await newAgent(admin, "console-agent");
    await goto("jobs");
    const { jobId } = await submitLowRisk(agent, [
      "sh",
      "-c",
      "echo first-line; sleep 5; echo second-line",
    ]);
    await page.locator("#job-id").fill(jobId);
    await page.getByRole("button", { name: "Open" }).click();
    const output = page.getByTestId("job-output");
    // The stream is live: the job is seen started before any output (the worker reports its
    // output with the signed result, so the output events come at the end of the run).
    await page
      .getByTestId("job-status")
      .filter({ hasText: "started" })
      .waitFor({ timeout: 90_000 });
    expect(await output.textContent()).toBe("");
    await output.filter({ hasText: "first-line" }).waitFor({ timeout: 60_000 });
    expect(await output.textContent()).toBe("first-line\nsecond-line\n");
    await page.getByTestId("job-verdict").filter({ hasText: "✓" }).waitFor({ timeout: 30_000 });
    await goto("jobs");
    await page.getByRole("button", { name: jobId }).waitFor();
    await accessible("jobs");
  }, 180_000);

  it("approves a job held for approval in the console, and the job runs", async () => {
    const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
    // The policy now asks a supervisor for every sandbox run (docs/governance.md "Approvals").
    const HELD = FIXED.replace(/}\n$/, "  require: supervisor_approval for execute(sandbox)\n}\n");
    await admin.policies.put("sandbox", HELD);
    try {
      const agent = await newAgent(admin, "held-agent");
      const held = await submitLowRisk(agent, ["echo", "approved-run"]);
      expect(held.status).toBe("awaiting_approval");
      const approvalId = (held as { approvalId?: string }).approvalId;
      expect(approvalId).toBeDefined();

      // The operator switches the console to a supervisor's key (an admin of that group).
      const sup = await generateEd25519KeyPair();
      const { kid } = await admin.keys.create({
        role: "admin",
        subject: "console-supervisor",
        publicKey: toBase64Url(sup.publicKey),
        groups: ["supervisor"],
      });
      const file = JSON.stringify({
        kid,
        secretKey: toBase64Url(sup.secretKey),
        publicJwk: publicJwk(sup.publicKey, { kid }),
      });
      await goto("overview");
      await page.getByRole("button", { name: "Forget key" }).click();
      await page.locator("#keyfile").setInputFiles({
        name: "sup.json",
        mimeType: "application/json",
        buffer: Buffer.from(file),
      });
      await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();

      await goto("approvals");
      const card = page.locator("li.card").filter({ hasText: approvalId! });
      await card.waitFor();
      await card.locator(`[id="reason-${approvalId}"]`).fill("a supervisor looked at it");
      await card.getByRole("button", { name: "Approve" }).click();
      await expect.poll(() => card.count()).toBe(0);
      const answered = await admin.approvals.get(approvalId!);
      expect(answered.status).not.toBe("pending");

      // The job moves on: its output and the signed result arrive on the jobs page.
      await goto(`jobs?id=${held.jobId}`);
      await page
        .getByTestId("job-output")
        .filter({ hasText: "approved-run" })
        .waitFor({ timeout: 90_000 });
      await page.getByTestId("job-verdict").filter({ hasText: "✓" }).waitFor({ timeout: 30_000 });
    } finally {
      await admin.policies.put("sandbox", FIXED);
    }
  }, 180_000);

  it("shows incidents opened by real failed requests, their audit events verified; acknowledges, resolves, lifts a quarantine", async () => {
    const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
    const detection = await detectionProcess();
    try {
      await goto("incidents");
      await page.getByTestId("incidents-live").filter({ hasText: "following changes" }).waitFor();
      // A key Sigil does not know signs a burst of requests: each is 401, audited as auth.failed
      // (the first at once, the rest as a count when the aggregation window closes).
      const kp = await generateEd25519KeyPair();
      const stranger = new Sigil({ baseUrl: stack.base, secretKey: kp.secretKey, retries: 0 });
      for (let i = 0; i < 5; i++)
        await expect(stranger.incidents.list()).rejects.toBeInstanceOf(SigilError);
      let id: string | undefined;
      await expect
        .poll(
          async () => {
            await detection.drain();
            const { incidents } = await admin.incidents.list({ state: "open" });
            id = incidents.find((i) => i.detector === "failed-auth-burst")?.incidentId;
            return id;
          },
          { timeout: 60_000, interval: 500 },
        )
        .toBeDefined();
      // The page hears of it on the change stream: no reload, no click on Refresh.
      const row = page.locator(`tr[data-incident="${id}"]`);
      await row.waitFor({ timeout: 30_000 });
      expect(await row.getAttribute("data-state")).toBe("open");
      await row.getByRole("button").click();
      await page.getByTestId("incident-state").filter({ hasText: "open" }).waitFor();
      const summary = page.getByTestId("incident-events-summary");
      await summary.filter({ hasText: "(done)" }).waitFor({ timeout: 60_000 });
      expect(await summary.textContent()).toMatch(/ 0 failed/);
      const events = page.locator("tr[data-type]");
      expect(await page.locator('tr[data-type="auth.failed"]').count()).toBeGreaterThan(0);
      expect(await page.locator('tr[data-type="incident.opened"]').count()).toBe(1);
      expect(await page.locator('tr[data-type][data-verified="true"]').count()).toBe(
        await events.count(),
      );

      // Moves need a reason; the buttons a state cannot take are disabled.
      const ack = page.getByRole("button", { name: "Acknowledge" });
      expect(await ack.isDisabled()).toBe(true);
      await page.locator("#incident-reason").fill("looking into the unknown key");
      await ack.click();
      await page.getByTestId("incident-state").filter({ hasText: "acknowledged" }).waitFor();
      expect(await ack.isDisabled()).toBe(true);
      await page.locator("#incident-reason").fill("a mistyped key id in a test client");
      await page.getByRole("button", { name: "Resolve" }).click();
      await page.getByTestId("incident-state").filter({ hasText: "resolved" }).waitFor();
      // Each move is an audit event of the incident, verified here like the rest.
      await page.locator('tr[data-type="incident.resolved"][data-verified="true"]').waitFor({
        timeout: 60_000,
      });
      await summary.filter({ hasText: "(done)" }).waitFor({ timeout: 60_000 });
      expect(await summary.textContent()).toMatch(/ 0 failed/);
      expect(
        await page.locator('tr[data-type="incident.updated"][data-verified="true"]').count(),
      ).toBe(1);
      const after = await admin.incidents.get(id!);
      expect(after.state).toBe("resolved");
      expect(after.timeline.map((t) => t.reason)).toEqual([
        null,
        "looking into the unknown key",
        "a mistyped key id in a test client",
      ]);
      expect(await page.getByRole("button", { name: "False positive" }).isDisabled()).toBe(true);

      // The filters ask the server: open ones no longer include it, resolved ones do.
      await page.locator("#incidents-state").selectOption("open");
      await expect.poll(() => row.count()).toBe(0);
      await page.locator("#incidents-state").selectOption("resolved");
      await row.waitFor();
      await page.locator("#incidents-severity").selectOption("medium");
      await row.waitFor();
      await accessible("incidents");

      // A known key's burst is high: the responder quarantines the key, keeps a signed evidence
      // bundle and marks the incident mitigated; the operator lifts the quarantine here.
      await page.locator("#incidents-state").selectOption("");
      await page.locator("#incidents-severity").selectOption("");
      const owner = await generateEd25519KeyPair();
      const { kid } = await admin.keys.create({
        role: "agent",
        subject: "burst-agent",
        publicKey: toBase64Url(owner.publicKey),
      });
      const wrong = await generateEd25519KeyPair();
      const forger = new Sigil({
        baseUrl: stack.base,
        keyId: kid,
        secretKey: wrong.secretKey,
        retries: 0,
      });
      for (let i = 0; i < 5; i++)
        await expect(forger.incidents.list()).rejects.toBeInstanceOf(SigilError);
      let high: string | undefined;
      await expect
        .poll(
          async () => {
            await detection.drain();
            const { incidents } = await admin.incidents.list({ state: "mitigated" });
            high = incidents.find((i) => i.keys.includes(kid))?.incidentId;
            return high;
          },
          { timeout: 60_000, interval: 500 },
        )
        .toBeDefined();
      const placed = async () =>
        (await admin.quarantine.list({ active: "true" })).quarantines.filter(
          (q) => q.incidentId === high,
        ).length;
      expect(await placed()).toBe(1);
      const highRow = page.locator(`tr[data-incident="${high}"]`);
      await highRow.waitFor({ timeout: 30_000 });
      await highRow.getByRole("button").click();
      await page.getByTestId("incident-state").filter({ hasText: "mitigated" }).waitFor();
      // The signed evidence bundle, checked in the browser against the published service key.
      await page.getByRole("button", { name: "Verify the evidence bundle" }).click();
      await page.getByTestId("evidence-verdict").filter({ hasText: "✓" }).waitFor();
      await page
        .locator('tr[data-type="quarantine.placed"][data-verified="true"]')
        .waitFor({ timeout: 60_000 });
      const lift = page.getByRole("button", { name: `Lift quarantine of key ${kid}` });
      expect(await lift.isDisabled()).toBe(true);
      await page.locator("#incident-reason").fill("the key's owner fixed the client");
      await lift.click();
      await page
        .getByRole("status")
        .filter({ hasText: `Lift quarantine of key ${kid}: done` })
        .waitFor();
      await page
        .locator('tr[data-type="quarantine.lifted"][data-verified="true"]')
        .waitFor({ timeout: 60_000 });
      expect(await placed()).toBe(0);
      await expect.poll(() => lift.count()).toBe(0);
      await screenshot(page, "incidents-mitigated");
    } finally {
      await detection.close();
    }
  }, 180_000);

  it("verifies every audit event in the browser; a tampered one is marked alone", async () => {
    await goto("audit");
    const summary = page.getByTestId("audit-summary");
    await summary.filter({ hasText: "(done)" }).waitFor({ timeout: 60_000 });
    expect(await summary.textContent()).toMatch(/ 0 failed/);
    const rows = page.locator("tr[data-index]");
    const n = await rows.count();
    expect(n).toBeGreaterThan(5);
    expect(await page.locator('tr[data-verified="true"]').count()).toBe(n);
    await page.locator("tr[data-index] button").first().click();
    await page.locator(".checks").filter({ hasText: "Signature" }).waitFor();
    await accessible("audit");

    // Tamper with one job event's details as stored in Redis.
    const redis = connectRedis();
    try {
      const [key] = await redis.keys(`${stack.prefix}:*events`);
      expect(key).toBeDefined();
      const all = await redis.hgetall(key!);
      const target = Object.entries(all).find(([, v]) => v.includes('"eventType":"job.'));
      expect(target).toBeDefined();
      const [index, value] = target!;
      const changed = value.replace('"details":{', '"details":{"injected":true,');
      expect(changed).not.toBe(value);
      await redis.hset(key!, index, changed);
      await page.reload();
      await summary.filter({ hasText: "(done)" }).waitFor({ timeout: 60_000 });
      expect(await summary.textContent()).toMatch(/ 1 failed/);
      const failed = page.locator('tr[data-verified="false"]');
      expect(await failed.count()).toBe(1);
      expect(await failed.getAttribute("data-index")).toBe(index);
      await failed.locator("button").click();
      await page.locator(".checks").filter({ hasText: "does not hash to its eventHash" }).waitFor();
      await screenshot(page, "audit-tampered");
    } finally {
      redis.disconnect();
    }
  }, 120_000);

  it("lists pending approvals and keys, accessibly", async () => {
    await goto("approvals");
    await page.getByText(/pending approval\(s\)/).waitFor();
    await accessible("approvals");
    await goto("keys");
    await page.getByText("(this console)").waitFor();
    await accessible("keys");
    expect(cspViolations).toEqual([]);
  });
});
