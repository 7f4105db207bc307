// /health's runsc check proves the hardening is in effect (issue 15, item 13): a probe container
// under the Tier 2 runtime must show `Seccomp: 2` in /proc/self/status, not only a registered
// runtime; the result is cached, so /health never starts a container per call.
import { describe, expect, it } from "vitest";
import { dockerChecks } from "../../functions/node/health";
import { healthRoutes } from "../../functions/routes/health";
import { judgeSeccomp, parseSeccompMode, runscSeccompProbe } from "../../platform/node/runsc-probe";
import { loadConfig } from "../../shared/config";
import { BUSYBOX, docker } from "./support";

const status = (mode: string) =>
  `Name:\tcat\nUmask:\t0022\nState:\tR (running)\nNoNewPrivs:\t1\nSeccomp:\t${mode}\nSeccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread force mitigated\n`;

describe("seccomp probe parsing", () => {
  it("reads the Seccomp line, not Seccomp_filters", () => {
    expect(parseSeccompMode(status("2"))).toBe(2);
    expect(parseSeccompMode(status("0"))).toBe(0);
    expect(parseSeccompMode("Seccomp_filters:\t1\n")).toBeUndefined();
    expect(parseSeccompMode("")).toBeUndefined();
    expect(parseSeccompMode("Seccomp:\tx\n")).toBeUndefined();
  });

  it("only mode 2 (a filter) passes; 0 names the fix", () => {
    expect(judgeSeccomp("runsc", status("2"))).toMatchObject({ ok: true, mode: 2 });
    const off = judgeSeccomp("runsc", status("0"));
    expect(off).toMatchObject({ ok: false, mode: 0 });
    expect(off.detail).toContain("--oci-seccomp");
    expect(judgeSeccomp("runsc", status("1"))).toMatchObject({ ok: false, mode: 1 });
    expect(judgeSeccomp("runsc", "garbage")).toMatchObject({ ok: false, mode: undefined });
  });
});

describe("/health runsc check", () => {
  it("reports the probe's result under runsc, and caches it", async () => {
    const config = loadConfig({ env: {} });
    const probe = runscSeccompProbe({ docker, runtime: "runsc", image: BUSYBOX });
    const app = healthRoutes(dockerChecks(config, docker, probe), 120_000);
    const check = async () => {
      const res = await app.request("/health");
      const body = (await res.json()) as {
        checks: { name: string; ok: boolean; detail: string }[];
      };
      return body.checks.find((c) => c.name === "runsc")!;
    };
    const first = await check();
    expect(first.ok).toBe(true);
    expect(first.detail).toContain("a probe container under runsc shows Seccomp: 2");
    const again = await check();
    expect(again.detail).toBe(first.detail);
    expect(probe.runs).toBe(1);
  });

  it("a probe that cannot run fails closed", async () => {
    const r = await runscSeccompProbe({
      docker,
      runtime: "runsc",
      image: "sigil/absent:0",
    }).result();
    expect(r.ok).toBe(false);
    expect(r.detail).toContain("could not run");
  });
});
