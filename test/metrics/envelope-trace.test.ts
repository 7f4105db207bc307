// The job envelope's `traceparent` (docs/operating.md "Traces"): optional, so envelopes without it
// verify as before; covered by the service key's signature like every field; a malformed value is
// refused with the envelope, never passed on to the worker's tracer.
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import { envelopeChecks } from "../../shared/jobs";
import {
  type EnvelopeVerifyOptions,
  type JobEnvelope,
  signEnvelope,
  verifyEnvelope,
} from "../../shared/jobs/envelope";
import { contextFromTraceparent, currentTraceparent } from "../../shared/tracing";
import { T0, testEnvelope } from "../jobs/support/envelope";
import { newSigner } from "../jobs/support/harness";

const config = loadConfig({});
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
let service: Signer;
let opts: EnvelopeVerifyOptions;

const envelope = (over: Partial<JobEnvelope> = {}) =>
  testEnvelope(over, ["true"], "0190f0f0-0000-7000-8000-000000000002");

beforeAll(async () => {
  service = await newSigner();
  opts = {
    ...envelopeChecks(
      config,
      async (kid) => (kid === service.kid ? service.publicKey : undefined),
      verifyEd25519,
    ),
    now: T0 + 1000,
  };
});

describe("traceparent in the job envelope", () => {
  it("is optional: an envelope with or without it verifies", async () => {
    for (const e of [envelope(), envelope({ traceparent: TP })]) {
      const v = await verifyEnvelope(
        JSON.parse(JSON.stringify(await signEnvelope(e, service))),
        opts,
      );
      expect(v.ok).toBe(true);
      if (v.ok) expect(v.envelope.traceparent).toBe(e.traceparent);
    }
  });

  it("is signed: changing, adding or removing it is bad-signature", async () => {
    const signed = await signEnvelope(envelope({ traceparent: TP }), service);
    const other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b8-01";
    const changed = { ...signed, envelope: { ...signed.envelope, traceparent: other } };
    const { traceparent: _drop, ...without } = signed.envelope;
    const removed = { ...signed, envelope: without };
    const plain = await signEnvelope(envelope(), service);
    const added = { ...plain, envelope: { ...plain.envelope, traceparent: TP } };
    for (const s of [changed, removed, added])
      expect(await verifyEnvelope(s, opts)).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("must be a W3C traceparent, even when signed", async () => {
    for (const bad of [
      "",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      `${TP}-extra`,
      `00-${"a".repeat(32)}-${"b".repeat(16)}-01\n`,
    ]) {
      const s = await signEnvelope(envelope({ traceparent: bad }), service);
      expect(await verifyEnvelope(s, opts), JSON.stringify(bad)).toMatchObject({
        ok: false,
        reason: "malformed",
      });
    }
  });

  it("without an SDK nothing is carried, and a bad value starts no trace", () => {
    expect(currentTraceparent()).toBeUndefined();
    expect(currentTraceparent(contextFromTraceparent(TP))).toBe(TP);
    expect(currentTraceparent(contextFromTraceparent("00-garbage"))).toBeUndefined();
  });
});
