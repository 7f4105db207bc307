// The web console (docs/console.md, docs/benchmarks.md "Console"): first load on loopback
// (bytes transferred, time until the page answers input) and the audit explorer verifying 1,000
// events in Chromium, beside the very same verification module run in Node in the same run.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type EventVerdict, trustRoot, verifyAll, verifyEvent } from "../../console/src/verify";
import { devAdminClient } from "../../sdk/node";
import type { AuditEvent } from "../../shared/audit/event";
import { buildConsole, launch } from "../console/support";
import { startStack } from "../support/stack";

const N = Number(process.env.CONSOLE_BENCH_EVENTS ?? 1000);

export async function bench(): Promise<void> {
  buildConsole();
  const [stack, browser] = await Promise.all([startStack("bench-console"), launch()]);
  try {
    const admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
    // Fill the trail to N events (the start-up already wrote a few).
    const have = (await admin.audit.checkpoint()).treeSize;
    let next = have;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < N) {
          next++;
          await admin.audit.append({ eventType: "app.bench", details: { n: next } });
        }
      }),
    );

    // First load, cold (a new context: no cache), until the key-import input answers.
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto(`${stack.base}/console`);
    await page.locator("#keyfile").waitFor();
    const interactiveMs = Date.now() - t0;
    const bytes = await page.evaluate(() =>
      (performance.getEntries() as PerformanceResourceTiming[])
        .filter((e) => "transferSize" in e)
        .reduce((s, e) => s + e.transferSize, 0),
    );
    await page.locator("#keyfile").setInputFiles({
      name: "admin-key.json",
      mimeType: "application/json",
      buffer: await readFile(join(stack.dataDir, "admin-key.json")),
    });
    await page.getByTestId("health-status").filter({ hasText: "ok" }).waitFor();

    // The explorer on the newest N events (everything in the signed checkpoint).
    await page.goto(`${stack.base}/console#/audit?limit=${N}`);
    await page.reload();
    const summary = page.getByTestId("audit-summary");
    await summary.filter({ hasText: "(done)" }).waitFor({ timeout: 600_000 });
    const browserMs = Number(await summary.getAttribute("data-elapsed-ms"));
    const browserText = (await summary.textContent()) ?? "";

    // The same in Node: same module, same requests (JWKS, checkpoint, pages, proofs 8 at a time).
    const n0 = performance.now();
    const [jwks, checkpoint] = await Promise.all([admin.wellKnownKeys(), admin.audit.checkpoint()]);
    const trust = await trustRoot(jwks, checkpoint);
    const from = Math.max(0, checkpoint.treeSize - N);
    const events: AuditEvent[] = (await admin.audit.list({ from, limit: 1000 })).events;
    const verdicts: EventVerdict[] = [];
    await verifyAll(admin, trust, events, (v) => verdicts.push(v));
    const nodeMs = performance.now() - n0;
    const failed = verdicts.filter((v) => v.ok !== true).length;
    // Anchor: the checks alone, proofs already fetched (what the requests cost is the rest).
    const proofs = await Promise.all(
      events.map(
        async (e) =>
          (await admin.audit.inclusionProof({ index: e.index, treeSize: trust.treeSize })).proof,
      ),
    );
    const c0 = performance.now();
    for (const [i, e] of events.entries()) await verifyEvent(e, trust, proofs[i]);
    const cpuMs = performance.now() - c0;

    console.log(
      `first load: ${(bytes / 1024).toFixed(1)} KiB transferred, interactive after ${interactiveMs} ms (loopback, cold cache)`,
    );
    console.log(`browser: ${browserText.trim()} in ${browserMs} ms`);
    console.log(
      `node:    ${verdicts.length} events checked, ${failed} not verified, in ${nodeMs.toFixed(0)} ms`,
    );
    console.log(`node, checks only (proofs fetched beforehand): ${cpuMs.toFixed(0)} ms`);
    console.log(`ratio browser / node: ${(browserMs / nodeMs).toFixed(2)} ×`);
    await ctx.close();
  } finally {
    await browser.close();
    await stack.stop();
  }
}
