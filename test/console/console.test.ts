// The web console in a real browser (docs/console.md): Debian's chromium against the API and a
// worker started as `npm start` does. One flow per page: import the key, health, a policy with an
// error shown at its line and column, fixed, saved and evaluated, a job's output arriving live,
// every audit event verified in the browser, then one event tampered with in Redis and exactly
// that one marked. axe-core on every page (light and dark); a screenshot of each page.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { type PolicyError, parse } from "../../shared/policy";
import { submitLowRisk } from "../jobs/support/harness";
import { connectRedis } from "../support/redis";
import { type Stack, startStack } from "../support/stack";
import { buildConsole, launch, screenshot, seriousViolations } from "./support";

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

async function accessible(name: string): Promise<void> {
  expect(await seriousViolations(page), name).toEqual([]);
  await page.emulateMedia({ colorScheme: "dark" });
  expect(await seriousViolations(page), `${name} (dark)`).toEqual([]);
  await screenshot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: "light" });
  await screenshot(page, name);
}

beforeAll(async () => {
  buildConsole();
  [stack, browser] = await Promise.all([startStack("console"), launch()]);
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
    const kp = await generateEd25519KeyPair();
    await admin.keys.create({
      role: "agent",
      subject: "console-agent",
      publicKey: toBase64Url(kp.publicKey),
      trust: 1,
    });
    const agent = new Sigil({ baseUrl: stack.base, secretKey: kp.secretKey });
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
