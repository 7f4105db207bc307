// Admin bootstrap without SIGIL_ADMIN_KEYS (docs/http-api.md): a local start generates an admin key
// pair into the data directory, mode 0600, says where it is, and the SDK picks it up from there.
// A second start reuses it rather than minting another admin.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { composeNode } from "../../functions/node/compose";
import { devAdminClient } from "../../sdk/node";
import { loadConfig } from "../../shared/config";
import { jsonLogger } from "../../shared/log";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { serveOnLoopback } from "../support/serve";

const redis = connectRedis();
const dataDir = mkdtempSync(join(tmpdir(), "sigil-dev-admin-"));
const prefix = testPrefix("devadmin").replace(/:$/, "");
afterAll(async () => {
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start() {
  const lines: string[] = [];
  const port = await freePort();
  const config = loadConfig({
    env: { SIGIL_DATA_DIR: dataDir, SIGIL_REDIS_PREFIX: prefix, SIGIL_SERVER_PORT: String(port) },
  });
  const deps = await composeNode({
    config,
    redis,
    log: jsonLogger("info", (l) => lines.push(l)),
    health: [],
    scrypt: { N: 2 ** 14, r: 8, p: 1 },
    reconcile: false,
  });
  const server = await serveOnLoopback(createApp(deps).fetch, port);
  return {
    deps,
    lines,
    url: server.url,
    stop: async () => {
      await server.close();
      await deps.close();
    },
  };
}

describe("local admin bootstrap", () => {
  it("writes the key 0600 into the data dir, says where, and the SDK uses it", async () => {
    const first = await start();
    try {
      const path = join(dataDir, "admin-key.json");
      expect(first.deps.adminKeyPath).toBe(path);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const said = first.lines.map((l) => JSON.parse(l) as { msg: string; path?: string });
      expect(said).toContainEqual(
        expect.objectContaining({ msg: expect.stringMatching(/admin key/), path }),
      );
      const admin = await devAdminClient({ baseUrl: first.url, dataDir });
      await admin.policies.put("p", "policy p { allow: ping }"); // an admin-only route
    } finally {
      await first.stop();
    }
    const second = await start();
    try {
      // The same key is reused, not generated anew.
      const admin = await devAdminClient({ baseUrl: second.url, dataDir });
      expect((await admin.policies.get("p")).version).toBe(1);
      expect(second.lines.some((l) => l.includes("generated a local admin key"))).toBe(false);
    } finally {
      await second.stop();
    }
  });
});
