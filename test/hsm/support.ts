// A SoftHSM2 of the test's own: a temporary token directory and configuration, named by
// SOFTHSM2_CONF for this test process only (vitest runs each file in its own process), so tests
// never share a token with each other or with a local `npm start` (infra/softhsm.sh).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

export interface TestHsm {
  dir: string;
  /** Initialises a token; returns the path of a 0600 file holding its user PIN. */
  token(label: string, pin?: string): string;
  /** Writes an hsm_config_path file (JSON) and returns its path. */
  config(cfg: Record<string, unknown>, name?: string): string;
  dispose(): void;
}

/** `extraConf`: more softhsm2.conf lines (e.g. `slots.mechanisms = ...`). */
export function testHsm(extraConf = ""): TestHsm {
  if (!existsSync(SOFTHSM_MODULE) || !existsSync("/usr/bin/softhsm2-util")) {
    throw new Error("SoftHSM2 is not installed: run `bash infra/softhsm.sh` (or infra/setup.sh)");
  }
  const dir = mkdtempSync(join(tmpdir(), "sigil-hsm-"));
  mkdirSync(join(dir, "tokens"), { mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n${extraConf}\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  let n = 0;
  return {
    dir,
    token(label, pin = "1234-user") {
      execFileSync(
        "softhsm2-util",
        ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "5678-so"],
        { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: "pipe" },
      );
      const file = join(dir, `pin-${label}`);
      writeFileSync(file, `${pin}\n`, { mode: 0o600 });
      return file;
    },
    config(cfg, name = `hsm-${n++}.json`) {
      const path = join(dir, name);
      writeFileSync(path, JSON.stringify({ module: SOFTHSM_MODULE, ...cfg }));
      return path;
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
