// The secret that encrypts private keys at rest on the edge, and the scrypt cost used with it.
import type { ScryptParams } from "../../../shared/keys/at-rest";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { KeysObject } from "./object";

/**
 * A Worker isolate has 128 MB: the Node default (N = 2^17, 128 MiB) cannot run there. 2^15 (32 MiB)
 * still makes a guessed passphrase expensive; the generated dev secret is 256 random bits anyway.
 * Blobs carry their own parameters, so Node-made and edge-made blobs decrypt on either side.
 */
export const EDGE_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };

/** SIGIL_KEY_PASSPHRASE (a Worker secret) if set; else the dev secret kept in the KeysObject. */
export async function edgeKeySecret(
  env: Record<string, unknown>,
  keys: StubSource<KeysObject>,
): Promise<{ secret: string; generated: boolean }> {
  const configured = env.SIGIL_KEY_PASSPHRASE;
  if (typeof configured === "string" && configured.length > 0)
    return { secret: configured, generated: false };
  return { secret: unwrap(await keys().masterSecret()), generated: true };
}
