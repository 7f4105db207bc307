// C2SP signed-note and tlog-checkpoint: the Go sumdb/note known-answer vector, round trips, and
// every malformed or mis-signed note rejected.
import { describe, expect, it } from "vitest";
import {
  formatCheckpoint,
  noteKeyId,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
  verifierKey,
} from "../../shared/audit";
import { fromBase64, toHex } from "../../shared/encoding";
import { seedOf, webcryptoSigner, webcryptoVerify } from "./support/crypto";

// golang.org/x/mod/sumdb/note example: key, text and the published signed note.
const GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_SKEY_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

const verify = webcryptoVerify();

describe("signed note", () => {
  it("reproduces the Go sumdb/note vector byte for byte (key id, verifier key, signature)", async () => {
    const seed = fromBase64(GO_SKEY_B64).slice(1);
    const signer = await webcryptoSigner(seed, "go");
    expect(toHex(noteKeyId("PeterNeumann", signer.publicKey))).toBe("c74f20a3");
    expect(verifierKey("PeterNeumann", signer.publicKey)).toBe(GO_VKEY);
    const { note } = await signNote(GO_TEXT, "PeterNeumann", signer);
    expect(note).toBe(GO_NOTE);
    const key = parseVerifierKey(GO_VKEY);
    expect(await openNote(GO_NOTE, [key], verify)).toEqual({
      text: GO_TEXT,
      verifiedBy: ["PeterNeumann"],
    });
  });

  it("rejects tampered text, foreign or missing signatures and malformed notes", async () => {
    const key = parseVerifierKey(GO_VKEY);
    await expect(
      openNote(GO_NOTE.replace("cryptography", "cryptographY"), [key], verify),
    ).rejects.toThrow();
    const other = await webcryptoSigner(seedOf(3));
    await expect(
      openNote(GO_NOTE, [{ name: "PeterNeumann", publicKey: other.publicKey }], verify),
    ).rejects.toThrow(/no signature by a known key/);
    for (const bad of [
      GO_TEXT,
      GO_NOTE.replace("\u2014", "-"),
      GO_NOTE.replace("\n\n", "\n"),
      GO_NOTE.slice(0, -1),
      GO_NOTE.replace("x08go", "!x08go"),
      `bad\u0001text\n${GO_NOTE.slice(GO_TEXT.length)}`,
    ]) {
      await expect(openNote(bad, [key], verify)).rejects.toThrow();
    }
    expect(() => parseVerifierKey(GO_VKEY.replace("c74f20a3", "c74f20a4"))).toThrow();
  });

  it("signs and opens tlog checkpoints; checks origin, size and root encoding", async () => {
    const signer = await webcryptoSigner(seedOf(5));
    const root = new Uint8Array(32).fill(9);
    const body = formatCheckpoint({ origin: "sigil.test/log", size: 42, rootHash: root });
    expect(body).toBe(`sigil.test/log\n42\n${Buffer.from(root).toString("base64")}\n`);
    const { note } = await signNote(body, "sigil.test/log", signer);
    const cp = await openCheckpoint(
      note,
      [{ name: "sigil.test/log", publicKey: signer.publicKey }],
      verify,
      "sigil.test/log",
    );
    expect(cp).toMatchObject({ origin: "sigil.test/log", size: 42, extensions: [] });
    await expect(
      openCheckpoint(
        note,
        [{ name: "sigil.test/log", publicKey: signer.publicKey }],
        verify,
        "other",
      ),
    ).rejects.toThrow(/origin/);
    for (const bad of [
      "o\n042\nAAAA\n",
      "o\n-1\nAAAA\n",
      "o\n1\nAAAA\n",
      "\n1\nAAAA\n",
      "o\n1\n",
    ]) {
      expect(() => parseCheckpoint(bad)).toThrow();
    }
    expect(parseCheckpoint(`${body}ext line\n`).extensions).toEqual(["ext line"]);
  });
});
