// `sigil quarantine add|ls|lift` against the deployment `npm start` brings up (docs/cli.md): an
// admin quarantines a subject, its key is refused (403 quarantined), the list shows it, the lift
// restores access; a wrong call is a usage error.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Quarantine, Sigil, SigilError } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { cliRunner } from "../support/cli";
import { type Stack, startStack } from "../support/stack";
import { registeredKey } from "../support/targets";

let stack: Stack;
let dir: string;
let admin: Sigil;

const sigil = cliRunner(() => ({ cwd: dir, url: stack.base, dataDir: stack.dataDir }));

beforeAll(async () => {
  stack = await startStack("qcli");
  dir = await mkdtemp(join(tmpdir(), "sigil-qcli-"));
  admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("sigil quarantine", () => {
  it("add, ls, lift; the quarantined subject's key is refused meanwhile", async () => {
    const k = await registeredKey(admin, "agent", "qc-agent");
    const agent = new Sigil({ baseUrl: stack.base, keyId: k.kid, signer: k.signer, retries: 0 });
    const code = () =>
      agent.audit.checkpoint().then(
        () => null,
        (e: unknown) => (e instanceof SigilError ? e.code : String(e)),
      );
    expect(await code()).toBeNull();

    const add = await sigil([
      "quarantine",
      "add",
      "--subject",
      "qc-agent",
      "--reason",
      "test",
      "--json",
    ]);
    expect(add.code, add.stderr).toBe(0);
    const q = (JSON.parse(add.stdout) as { quarantine: Quarantine }).quarantine;
    expect(q.target).toEqual({ kind: "subject", subject: "qc-agent" });
    expect(await code()).toBe("quarantined");

    const ls = await sigil(["quarantine", "ls", "--active", "--json"]);
    expect(ls.code, ls.stderr).toBe(0);
    const listed = (JSON.parse(ls.stdout) as { quarantines: Quarantine[] }).quarantines;
    expect(listed.map((x) => x.id)).toContain(q.id);

    const lift = await sigil(["quarantine", "lift", q.id, "--reason", "done"]);
    expect(lift.code, lift.stderr).toBe(0);
    expect(lift.stdout).toContain(`lifted ${q.id}`);
    expect(await code()).toBeNull();

    const bad = await sigil(["quarantine", "add", "--subject", "x", "--kid", "y", "--reason", "r"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("exactly one of");
  }, 120_000);

  it("--incident names the incident it answers: an unknown or malformed one places nothing", async () => {
    const unknown = "01890000-0000-7000-8000-000000000000";
    for (const [incident, says] of [
      [unknown, `no incident ${unknown}`],
      ["not-a-uuid", "incidentId"],
    ]) {
      const add = ["add", "--subject", "qc-linked", "--reason", "r", "--incident", incident!];
      const r = await sigil(["quarantine", ...add]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(says);
    }
    const ls = await sigil(["quarantine", "ls", "--active", "--json"]);
    const listed = (JSON.parse(ls.stdout) as { quarantines: Quarantine[] }).quarantines;
    expect(listed.filter((q) => Object.values(q.target).includes("qc-linked"))).toEqual([]);
  }, 60_000);
});
