// `[redis] url = "rediss://..."` with `tls_ca_file` (docs/deployment.md "Redis connections"): a
// Redis that listens on TLS only, with a certificate from a CA this test makes (openssl), and an
// API process that keeps all its state there. Without the CA the same URL is refused (the
// server's certificate is not trusted), and a certificate for another name is refused too.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectRedis } from "../../platform/node/redis";
import { loadConfig } from "../../shared/config";
import { type PrivateRedis, spawnPrivateRedis } from "../support/private-redis";
import { registeredKey } from "../support/targets";
import { Fleet } from "./support/nodes";
import { freePort, waitFor } from "./support/sentinel";

const dir = mkdtempSync(join(tmpdir(), "sigil-tls-"));
let server: PrivateRedis | undefined;
let fleet: Fleet | undefined;
let port = 0;
const ca = join(dir, "ca.crt");

function openssl(args: string[]) {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** A CA, and a server certificate it signs for `name`. */
function makeCerts() {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1"].concat([
      "-subj",
      "/CN=sigil-test-ca",
    ]),
  );
  openssl(["req", ...ec, "-keyout", "redis.key", "-out", "redis.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "ext"), "subjectAltName=DNS:localhost\n");
  openssl([
    "x509",
    "-req",
    "-in",
    "redis.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "redis.crt",
    "-days",
    "1",
    "-extfile",
    "ext",
  ]);
}

const settings = (url: string, withCa: boolean) =>
  loadConfig({ env: { REDIS_URL: url, ...(withCa ? { SIGIL_REDIS_TLS_CA_FILE: ca } : {}) } }).redis;
const once = { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000 };

beforeAll(async () => {
  makeCerts();
  port = await freePort();
  server = spawnPrivateRedis(
    dir,
    // TLS only: no plain port.
    [
      "--port",
      "0",
      "--tls-port",
      String(port),
      "--tls-cert-file",
      join(dir, "redis.crt"),
      "--tls-key-file",
      join(dir, "redis.key"),
      "--tls-ca-cert-file",
      ca,
      "--tls-auth-clients",
      "no",
    ],
    ["--appendfsync", "always", "--maxmemory", "256mb", "--maxmemory-policy", "noeviction"],
  );
  // Readiness over TLS itself (there is no plain port to ping).
  await waitFor("redis on TLS", async () => {
    const c = connectRedis(settings(`rediss://localhost:${port}`, true), once);
    c.on("error", () => undefined);
    try {
      return (await c.ping()) === "PONG";
    } finally {
      c.disconnect();
    }
  });
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  server?.stop();
  rmSync(dir, { recursive: true, force: true }); // also when the server never started
}, 60_000);

it("without the CA file, or for a name the certificate does not carry, the connection is refused", async () => {
  for (const [url, withCa] of [
    [`rediss://localhost:${port}`, false],
    [`rediss://127.0.0.1:${port}`, true],
  ] as const) {
    const c = connectRedis(settings(url, withCa), once);
    c.on("error", () => undefined);
    await expect(c.ping(), url).rejects.toThrow();
    c.disconnect();
  }
});

it("an API process keeps its state in Redis over rediss:// with tls_ca_file", async () => {
  fleet = await Fleet.create();
  const api = await fleet.api("tls-api", {
    REDIS_URL: `rediss://localhost:${port}`,
    SIGIL_REDIS_TLS_CA_FILE: ca,
    SIGIL_REDIS_PREFIX: "tls",
    SIGIL_DATA_DIR: fleet.tempDir("tls-api"),
  });
  const health = (await (await fetch(`${api.base}/health`)).json()) as {
    checks: { name: string; ok: boolean }[];
  };
  const redisChecks = health.checks.filter((c) => c.name.startsWith("redis"));
  expect(redisChecks.length, JSON.stringify(health)).toBeGreaterThan(0);
  expect(
    redisChecks.every((c) => c.ok),
    JSON.stringify(health),
  ).toBe(true);
  const admin = fleet.client(api.base);
  const agent = await registeredKey(admin, "agent", "tls-agent");
  const e = await fleet.client(api.base, agent).audit.append({
    eventType: "agent.tick",
    details: { over: "tls" },
  });
  expect(await admin.audit.verify()).toEqual({ valid: true, checked: e.index + 1 });
  // It is there, in the TLS Redis.
  const c = connectRedis(settings(`rediss://localhost:${port}`, true), once);
  c.on("error", () => undefined);
  const [, keys] = await c.scan("0", "MATCH", "tls:keys:*", "COUNT", 1000);
  c.disconnect();
  expect(keys.length).toBeGreaterThan(0);
}, 180_000);
