// infra/ probes under `set -o pipefail` (issue 15, item 13): `runsc flags | grep -q -- -oci-seccomp`
// read as "no match" whenever grep exited at its match and runsc, still writing, died of SIGPIPE
// (about one set-up in four), and --oci-seccomp was left out of daemon.json. Probes now capture the
// output first and match it afterwards (probe_has in infra/lib.sh), and no probe pipes into an
// early-exiting reader.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../support/vectors";

const dir = mkdtempSync(join(tmpdir(), "sigil-probe-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Like `runsc flags`: the flag early, then much more output than a pipe buffer holds.
const fake = join(dir, "fake-runsc");
writeFileSync(
  fake,
  "#!/bin/sh\nprintf '  -oci-seccomp\\n    \\tEnables loading OCI seccomp filters.\\n'\nhead -c 2000000 /dev/zero | tr '\\0' 'x'\necho\n",
);
chmodSync(fake, 0o755);

const bash = (script: string) =>
  execFileSync("bash", ["-c", `set -euo pipefail\n. infra/lib.sh\n${script}`], {
    cwd: repoRoot,
    encoding: "utf8",
  }).trim();

describe("infra probes", () => {
  it("the old pipeline misses the flag when the prober dies of SIGPIPE (the race, made certain)", () => {
    expect(
      bash(`if "${fake}" flags | grep -q -- -oci-seccomp; then echo found; else echo missed; fi`),
    ).toBe("missed");
  });

  it("probe_has finds it every time, and tells a failing command apart", () => {
    for (let i = 0; i < 10; i++)
      expect(bash(`probe_has -oci-seccomp "${fake}" flags && echo found || echo missed`)).toBe(
        "found",
      );
    expect(bash(`probe_has -no-such-flag "${fake}" flags && echo found || echo "missed $?"`)).toBe(
      "missed 1",
    );
    expect(bash(`probe_has x false && echo found || echo "failed $?"`)).toBe("failed 2");
  });

  it("no script in infra/ pipes a command into grep -q or head", () => {
    const offenders: string[] = [];
    for (const f of readdirSync(join(repoRoot, "infra")).filter((n) => n.endsWith(".sh"))) {
      readFileSync(join(repoRoot, "infra", f), "utf8")
        .split("\n")
        .forEach((line, i) => {
          const code = line.replace(/^\s*#.*$/, "");
          if (/\|\s*(grep\b[^|]*\s-[A-Za-z]*q|head\b)/.test(code))
            offenders.push(`${f}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
