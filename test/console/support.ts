// The console's browser tests and benchmark: the bundle built if it is stale (infra/console.sh,
// idempotent), Debian's chromium driven by playwright-core (never a downloaded browser), axe-core.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { type Browser, chromium, type Page } from "playwright-core";
import { repoRoot } from "../support/vectors";

export const CHROMIUM = process.env.SIGIL_CHROMIUM ?? "/usr/bin/chromium";
export const ARTIFACTS = join(repoRoot, "test-results", "console");

export function buildConsole(): void {
  execFileSync("bash", ["infra/console.sh"], { cwd: repoRoot, stdio: "inherit" });
}

export async function launch(): Promise<Browser> {
  // --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA). */
export async function seriousViolations(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  return r.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
