import * as ed from "@noble/ed25519";
import { describe, expect, it } from "vitest";
import { readServerSentEvents, SigilError, signerFromSecretKey } from "../../sdk";
import { utf8 } from "../../shared/encoding";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(utf8(ch));
      c.close();
    },
  });
}

async function collect(chunks: string[]) {
  const out = [];
  for await (const e of readServerSentEvents(streamOf(chunks))) out.push(e);
  return out;
}

describe("server-sent events parser", () => {
  it("handles split lines, CRLF across chunks, comments, multi-line data and a default event", async () => {
    const events = await collect([
      ": keep-alive\r",
      '\nevent: started\r\nid: 7\r\ndata: {"a"',
      ":1}\r",
      "\n\r\ndata: one\ndata:two\n\ndata: tail-without-blank-line",
    ]);
    expect(events).toEqual([
      { event: "started", data: { a: 1 }, id: "7" },
      { event: "message", data: "one\ntwo", id: "7" },
    ]);
  });

  it("ignores events without data", async () => {
    expect(await collect(["event: ping\n\n", "data: x\n\n"])).toEqual([
      { event: "message", data: "x", id: undefined },
    ]);
  });
});

describe("signerFromSecretKey", () => {
  it("derives the RFC 8032 public key and signs like the reference implementation", async () => {
    // RFC 8032 §7.1 TEST 1.
    const seed = Buffer.from(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      "hex",
    );
    const s = await signerFromSecretKey(seed, "t1");
    expect(Buffer.from(s.publicKey).toString("hex")).toBe(
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    );
    const msg = utf8("sigil");
    expect(await s.sign(msg)).toEqual(await ed.signAsync(msg, seed));
  });

  it("rejects a key that is not 32 bytes", async () => {
    await expect(signerFromSecretKey(new Uint8Array(31), "x")).rejects.toThrow(TypeError);
  });
});

describe("SigilError", () => {
  it("exposes the stable code from the problem type", () => {
    const e = new SigilError({
      type: "https://sigil.dev/errors/replay",
      title: "Replay",
      status: 401,
      detail: "nonce",
    });
    expect(e).toMatchObject({ code: "replay", status: 401, message: "Replay: nonce" });
    expect(SigilError.client("timeout", "slow")).toMatchObject({ code: "timeout", status: 0 });
  });
});
