// The `sigil` bin as a user runs it (docs/cli.md): spawned as a process, without colours, against
// a target the test started, with its own CLI config file so no profile of the machine leaks in.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./vectors";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliTarget {
  /** Working directory, also where the CLI config file (cli.toml) would be. */
  cwd: string;
  url: string;
  /** The data directory holding the local admin key (the default key). */
  dataDir?: string;
}

/** A `sigil(args, env?, input?)` for the target `target()` names when it is called. */
export function cliRunner(target: () => CliTarget) {
  return (args: string[], env: Record<string, string> = {}, input?: string): Promise<CliRun> => {
    const t = target();
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [join(repoRoot, "cli", "sigil.mjs"), ...args], {
        cwd: t.cwd,
        env: {
          ...process.env,
          NO_COLOR: "1",
          SIGIL_URL: t.url,
          ...(t.dataDir !== undefined ? { SIGIL_DATA_DIR: t.dataDir } : {}),
          SIGIL_CLI_CONFIG: join(t.cwd, "cli.toml"),
          ...env,
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (b: Buffer) => {
        stdout += b.toString();
      });
      p.stderr.on("data", (b: Buffer) => {
        stderr += b.toString();
      });
      // A command that hangs (a watch that never sees its event) must not hang the suite.
      const kill = setTimeout(() => p.kill("SIGKILL"), 120_000);
      p.on("error", reject);
      p.on("close", (code) => {
        clearTimeout(kill);
        resolve({ code, stdout, stderr });
      });
      p.stdin.end(input ?? "");
    });
  };
}
