// The HTTP contract suite runs against every target: the Node app (real Redis) and the edge app
// (real workerd). Each target gets a fresh admin key via SIGIL_ADMIN_KEYS, so both behave alike.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../../functions/app";
import { composeNode } from "../../functions/node/compose";
import { type Role, Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import {
  createSigner,
  ed25519Kid,
  generateEd25519KeyPair,
  publicJwk,
  type Signer,
} from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import type { IncidentStore } from "../../shared/incidents";
import { silentLogger } from "../../shared/log";
import { freePort, startEdge } from "./edge";
import { connectRedis, dropPrefix, testPrefix } from "./redis";
import { serveOnLoopback } from "./serve";

export interface TestKey {
  kid: string;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  signer: Signer;
}

export async function newKey(): Promise<TestKey> {
  const kp = await generateEd25519KeyPair();
  const kid = ed25519Kid(kp.publicKey);
  return { kid, ...kp, signer: await createSigner(kp.secretKey, kid) };
}

/** A fresh key pair, registered through `admin` under this role and subject (and groups, trust). */
export async function registeredKey(
  admin: Sigil,
  role: Role,
  subject: string,
  attrs: { groups?: string[]; trust?: number } = {},
): Promise<TestKey> {
  const k = await newKey();
  const { kid } = await admin.keys.create({
    role,
    subject,
    publicKey: toBase64Url(k.publicKey),
    ...attrs,
  });
  // The tests sign with k.kid: the service must name the key the same way.
  if (kid !== k.kid) throw new Error(`registered as ${kid}, expected ${k.kid}`);
  return k;
}

/** A request to `url` signed with `key` (RFC 9421), or unsigned without one, for fetch. */
export async function signedRequest(
  method: string,
  url: string,
  key: TestKey | undefined,
  body?: string,
): Promise<RequestInit> {
  const headers = new Headers();
  if (body !== undefined) headers.set("content-type", "application/json");
  if (key) {
    const sig = await signRequest({ method, url, headers, body: body ?? null }, key.signer, {
      keyid: key.kid,
    });
    for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
  }
  return { method, headers, ...(body !== undefined ? { body } : {}) };
}

export interface Target {
  name: "node" | "edge";
  url: string;
  admin: TestKey;
  client(key: TestKey): Sigil;
  /** Node only: the incident store the API reads (tests open incidents in it directly). */
  incidents?: IncidentStore;
  stop(): Promise<void>;
}

export const targetNames = (process.env.SIGIL_TARGETS ?? "node,edge").split(
  ",",
) as Target["name"][];

export async function startTarget(
  name: Target["name"],
  extraEnv: Record<string, string> = {},
  /** Node only: SchemaPin discovery mapped to local test servers. */
  discovery?: Parameters<typeof composeNode>[0]["discovery"],
): Promise<Target> {
  const admin = await newKey();
  const adminKeys = JSON.stringify([publicJwk(admin.publicKey, { kid: admin.kid })]);
  const client = (key: TestKey) =>
    new Sigil({ baseUrl: url, keyId: key.kid, signer: key.signer, retries: 0 });
  let url = "";
  if (name === "edge") {
    const edge = await startEdge({ SIGIL_ADMIN_KEYS: adminKeys, ...extraEnv });
    url = edge.url;
    return { name, url, admin, client, stop: edge.stop };
  }
  const dataDir = mkdtempSync(join(tmpdir(), "sigil-node-"));
  const prefix = testPrefix("http").replace(/:$/, "");
  // The port is configured as well as listened on: the default allowed @authority is the
  // service's own host:port, as on a real start.
  const port = await freePort();
  const config = loadConfig({
    env: {
      SIGIL_ADMIN_KEYS: adminKeys,
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_SERVER_PORT: String(port),
      ...extraEnv,
    },
  });
  const redis = connectRedis();
  const deps = await composeNode({
    config,
    redis,
    log: silentLogger,
    health: [],
    scrypt: { N: 2 ** 14, r: 8, p: 1 },
    reconcile: false,
    ...(discovery ? { discovery } : {}),
  });
  const server = await serveOnLoopback(createApp(deps).fetch, port);
  url = server.url;
  return {
    name,
    url,
    admin,
    client,
    ...(deps.incidents ? { incidents: deps.incidents } : {}),
    async stop() {
      await server.close();
      await deps.close();
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
