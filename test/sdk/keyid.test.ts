import { describe, expect, it } from "vitest";
import { Sigil } from "../../sdk";
import { ed25519Kid, generateEd25519KeyPair } from "../../shared/crypto";
import { parseSignatureFields } from "../../shared/httpsig";

describe("Sigil client with only a secret key", () => {
  it("signs with the key's RFC 7638 thumbprint as keyid, as the service names keys", async () => {
    const kp = await generateEd25519KeyPair();
    let seen: Headers | undefined;
    const client = new Sigil({
      baseUrl: "http://sigil.test",
      secretKey: kp.secretKey,
      fetch: async (_url, init) => {
        seen = new Headers(init?.headers);
        return new Response(JSON.stringify({ treeSize: 0 }), {
          headers: { "content-type": "application/json" },
        });
      },
    });
    await client.audit.checkpoint();
    const parsed = parseSignatureFields(seen!.get("signature-input")!, seen!.get("signature")!);
    expect(parsed.ok && parsed.entry.params.get("keyid")).toBe(ed25519Kid(kp.publicKey));
  });
});
