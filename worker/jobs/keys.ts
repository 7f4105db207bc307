// The worker's own Ed25519 key (data dir, 0600) and the service keys it trusts for envelopes.
import { chmod, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createSigner,
  generateEd25519KeyPair,
  publicJwk,
  publicKeyFromJwk,
  type Signer,
} from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";

interface KeyFile {
  kid: string;
  publicKey: string;
  secretKey: string;
}

/** Loads `<dir>/worker-key.json`, creating it (0600) on first start. */
export async function loadOrCreateWorkerKey(
  dir: string,
): Promise<{ signer: Signer; created: boolean; path: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "worker-key.json");
  let raw: string | undefined;
  try {
    raw = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (raw !== undefined) {
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077)
      throw new Error(`${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    const f = JSON.parse(raw) as KeyFile;
    const signer = await createSigner(fromBase64Url(f.secretKey));
    if (signer.kid !== f.kid) throw new Error(`${path}: kid does not match the key`);
    return { signer, created: false, path };
  }
  const kp = await generateEd25519KeyPair();
  const signer = await createSigner(kp.secretKey);
  const file: KeyFile = {
    kid: signer.kid,
    publicKey: toBase64Url(kp.publicKey),
    secretKey: toBase64Url(kp.secretKey),
  };
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(file)}\n`, { mode: 0o600, flag: "wx" });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  // The public half, for the operator to register with role `worker` (POST /v1/keys).
  await writeFile(join(dir, "worker-key.pub.jwk"), `${JSON.stringify(publicJwk(kp.publicKey))}\n`, {
    mode: 0o644,
  });
  return { signer, created: true, path };
}

type ServiceKeySource = () => Promise<unknown>;

/**
 * Service keys by kid, from a static JWK list (SIGIL_SERVICE_KEYS) and/or a JWK Set fetched from
 * the API's /.well-known/sigil/keys. An unknown kid triggers at most one refresh per interval; a
 * refresh that failed throws (the caller retries later) and does not count.
 */
export function serviceKeyResolver(opts: {
  staticKeys?: unknown[];
  fetchJwks?: ServiceKeySource;
  minRefreshMs?: number;
}): (kid: string) => Promise<Uint8Array | undefined> {
  const keys = new Map<string, Uint8Array>();
  const add = (list: unknown[]) => {
    for (const k of list) {
      const jwk = k as { kid?: unknown; status?: unknown; crv?: unknown; role?: unknown };
      if (jwk.crv !== "Ed25519" || jwk.status === "revoked") continue;
      // Only service and gateway keys sign envelopes. The JWK Set also publishes worker keys
      // (they sign results): accepting those would let one worker forge jobs for all others.
      if (jwk.role !== undefined && jwk.role !== "service" && jwk.role !== "gateway") continue;
      try {
        const pk = publicKeyFromJwk(k);
        if (typeof jwk.kid === "string") keys.set(jwk.kid, pk);
      } catch {
        // an unusable entry is skipped; its kid stays unknown (fail closed)
      }
    }
  };
  add(opts.staticKeys ?? []);
  let last = 0;
  let inflight: Promise<void> | undefined;
  const refresh = async () => {
    if (!opts.fetchJwks) return;
    const set = (await opts.fetchJwks()) as { keys?: unknown };
    if (Array.isArray(set.keys)) add(set.keys);
  };
  return async (kid) => {
    const known = keys.get(kid);
    if (known) return known;
    // A lookup while a refresh is under way waits for it (two jobs taken at once with no key
    // known yet: the second must not find the kid "unknown" because the first started the fetch).
    if (inflight) {
      await inflight;
      return keys.get(kid);
    }
    if (!opts.fetchJwks || Date.now() - last < (opts.minRefreshMs ?? 10_000)) return undefined;
    last = Date.now();
    inflight ??= refresh()
      .catch((e: unknown) => {
        // A failed fetch (the API between two Redis primaries, docs/deployment.md) is no answer:
        // the next lookup asks again instead of treating the kid as unknown for minRefreshMs.
        last = 0;
        throw e;
      })
      .finally(() => {
        inflight = undefined;
      });
    await inflight;
    return keys.get(kid);
  };
}
