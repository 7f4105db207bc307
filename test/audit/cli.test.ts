// scripts/audit-verify.ts: the offline verifier CLI on a real export and a JWK Set.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolverFromJwks } from "../../shared/audit";
import { toBase64Url } from "../../shared/encoding";
import { repoRoot } from "../support/vectors";
import { memoryHarness, serviceFor } from "./support/harness";

const dir = mkdtempSync(join(tmpdir(), "sigil-audit-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  return spawnSync("npx", ["tsx", join(repoRoot, "scripts/audit-verify.ts"), ...args], {
    cwd: repoRoot,
    encoding: "utf8",
  });
}

describe("audit-verify CLI", () => {
  it("verifies an export with a JWK Set and rejects a tampered one", async () => {
    const { service, signer } = await serviceFor(memoryHarness());
    for (let i = 0; i < 30; i++)
      await service.append({ eventType: "job.completed", details: { i } });
    let text = "";
    for await (const l of service.export()) text += l;
    const jwks = {
      keys: [{ kty: "OKP", crv: "Ed25519", x: toBase64Url(signer.publicKey), kid: "audit-1" }],
    };
    writeFileSync(join(dir, "keys.json"), JSON.stringify(jwks));
    writeFileSync(join(dir, "ok.ndjson"), text);
    writeFileSync(join(dir, "bad.ndjson"), text.replace('{"i":17}', '{"i":71}'));
    const ok = run(join(dir, "ok.ndjson"), "--keys", join(dir, "keys.json"));
    expect(ok.stdout).toMatch(
      /^valid: 30 events \[0, 30\) of chain default; checkpoint at 30 verified/,
    );
    expect(ok.status).toBe(0);
    const bad = run(join(dir, "bad.ndjson"), "--keys", join(dir, "keys.json"));
    expect(bad.stdout).toMatch(
      /INVALID at index 17: tampered details \(field details\)|INVALID at index 17/,
    );
    expect(bad.status).toBe(1);
  }, 60_000);

  it("reads key validity windows and revocation from the JWK Set", async () => {
    const x = toBase64Url(new Uint8Array(32).fill(1));
    const keys = resolverFromJwks({
      keys: [
        {
          kty: "OKP",
          crv: "Ed25519",
          x,
          kid: "a",
          validFrom: "2024-01-01T00:00:00.000Z",
          validUntil: "2025-01-01T00:00:00.000Z",
        },
        {
          kty: "OKP",
          crv: "Ed25519",
          x,
          kid: "b",
          status: "revoked",
          revokedAt: "2024-06-01T00:00:00.000Z",
        },
        { kty: "OKP", crv: "Ed25519", x, kid: "c", nbf: 1_700_000_000 },
        // As /.well-known/sigil/keys publishes a revoked key: revoked_at in seconds.
        { kty: "OKP", crv: "Ed25519", x, kid: "e", status: "revoked", revoked_at: 1_717_200_000 },
        { kty: "RSA", kid: "d" },
      ],
    });
    expect((await keys("a", "2024-05-01T00:00:00.000Z"))?.validAt).toBe(true);
    expect((await keys("a", "2025-05-01T00:00:00.000Z"))?.validAt).toBe(false);
    expect((await keys("b", "2024-05-01T00:00:00.000Z"))?.validAt).toBe(true);
    expect((await keys("b", "2024-07-01T00:00:00.000Z"))?.validAt).toBe(false);
    expect((await keys("c", "2020-01-01T00:00:00.000Z"))?.validAt).toBe(false);
    expect((await keys("e", "2024-05-01T00:00:00.000Z"))?.validAt).toBe(true);
    expect((await keys("e", "2024-07-01T00:00:00.000Z"))?.validAt).toBe(false);
    expect(await keys("d", "2024-05-01T00:00:00.000Z")).toBeUndefined();
    expect(await keys("zzz", "2024-05-01T00:00:00.000Z")).toBeUndefined();
  });
});
