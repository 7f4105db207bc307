import { describe, expect, it } from "vitest";
import { CryptoError, generateX25519KeyPair, SecureChannel } from "../../shared/crypto";
import { fromUtf8, utf8 } from "../../shared/encoding";

function pair(window = 0, context = utf8("session-1")) {
  const a = generateX25519KeyPair();
  const b = generateX25519KeyPair();
  return {
    alice: SecureChannel.fromX25519(a.secretKey, b.publicKey, {
      role: "initiator",
      context,
      window,
    }),
    bob: SecureChannel.fromX25519(b.secretKey, a.publicKey, { role: "responder", context, window }),
  };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof CryptoError) return e.code;
    throw e;
  }
  return undefined;
}

describe("SecureChannel", () => {
  it("carries messages both ways with per-direction counters", () => {
    const { alice, bob } = pair();
    for (let i = 0; i < 5; i++) {
      expect(fromUtf8(bob.open(alice.seal(utf8(`a${i}`))))).toBe(`a${i}`);
      expect(fromUtf8(alice.open(bob.seal(utf8(`b${i}`), utf8("hdr")), utf8("hdr")))).toBe(`b${i}`);
    }
  });

  it("rejects a message reflected back to its sender (direction keys differ)", () => {
    const { alice } = pair();
    expect(code(() => alice.open(alice.seal(utf8("x"))))).toBe("decrypt_failed");
  });

  it("strict mode: replays are rejected, gaps and reordering are rejected", () => {
    const { alice, bob } = pair(0);
    const m0 = alice.seal(utf8("0"));
    const m1 = alice.seal(utf8("1"));
    const m2 = alice.seal(utf8("2"));
    expect(code(() => bob.open(m1))).toBe("out_of_order");
    bob.open(m0);
    expect(code(() => bob.open(m0))).toBe("replay");
    expect(code(() => bob.open(m2))).toBe("out_of_order");
    bob.open(m1);
    bob.open(m2);
    expect(code(() => bob.open(m1))).toBe("replay");
  });

  it("window mode: reordering inside the window is fine, each message once, older ones out of window", () => {
    const { alice, bob } = pair(4);
    const msgs = Array.from({ length: 10 }, (_, i) => alice.seal(utf8(String(i))));
    expect(fromUtf8(bob.open(msgs[2]!))).toBe("2");
    expect(fromUtf8(bob.open(msgs[0]!))).toBe("0");
    expect(code(() => bob.open(msgs[0]!))).toBe("replay");
    expect(fromUtf8(bob.open(msgs[7]!))).toBe("7"); // window is now 4..7
    expect(code(() => bob.open(msgs[3]!))).toBe("out_of_window");
    expect(fromUtf8(bob.open(msgs[4]!))).toBe("4");
    expect(code(() => bob.open(msgs[4]!))).toBe("replay");
    expect(code(() => bob.open(msgs[7]!))).toBe("replay");
    expect(fromUtf8(bob.open(msgs[6]!))).toBe("6");
    expect(fromUtf8(bob.open(msgs[5]!))).toBe("5");
  });

  it("forged or tampered messages do not advance the receive state", () => {
    const { alice, bob } = pair(0);
    const m0 = alice.seal(utf8("0"));
    const forged = m0.slice();
    forged[forged.length - 1]! ^= 1;
    expect(code(() => bob.open(forged))).toBe("decrypt_failed");
    // A forged high counter must not burn the counters below it.
    const high = m0.slice();
    high[7] = 9;
    expect(code(() => bob.open(high))).toBe("out_of_order");
    expect(fromUtf8(bob.open(m0))).toBe("0");
  });

  it("binds context, AAD and counter: a different session or header fails", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    const alice = SecureChannel.fromX25519(a.secretKey, b.publicKey, {
      role: "initiator",
      context: utf8("s1"),
    });
    const bob = SecureChannel.fromX25519(b.secretKey, a.publicKey, {
      role: "responder",
      context: utf8("s2"),
    });
    expect(code(() => bob.open(alice.seal(utf8("x"))))).toBe("decrypt_failed");
    const p = pair();
    const m = p.alice.seal(utf8("x"), utf8("aad1"));
    expect(code(() => p.bob.open(m, utf8("aad2")))).toBe("decrypt_failed");
  });

  it("fromSharedSecret: both sides derive the same keys; closing forgets them", () => {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const i = SecureChannel.fromSharedSecret(secret, { role: "initiator" });
    const r = SecureChannel.fromSharedSecret(secret, { role: "responder" });
    expect(fromUtf8(r.open(i.seal(utf8("hi"))))).toBe("hi");
    i.close();
    expect(i.closed).toBe(true);
    expect(code(() => i.seal(utf8("x")))).toBe("channel_closed");
    expect(
      code(() => SecureChannel.fromSharedSecret(new Uint8Array(16), { role: "initiator" })),
    ).toBe("invalid_input");
    expect(
      code(() => SecureChannel.fromSharedSecret(secret, { role: "initiator", window: 5000 })),
    ).toBe("invalid_input");
  });
});
