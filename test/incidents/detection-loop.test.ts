// The Node detection loop (functions/incident-response.ts, docs/incidents.md "Running it"): an
// event appended in this process wakes it, so a replay opens its incident long before the next
// poll would have (the poll here is an hour); without the wake-up the same append is only seen at
// the next poll, so the second case shows the first is not passing by accident.
import { afterEach, describe, expect, it } from "vitest";
import {
  type DetectionLoop,
  incidentResponse,
  startDetection,
} from "../../functions/incident-response";
import { configSchema } from "../../shared/config";
import { MemoryIncidentStore } from "../../shared/incidents";
import {
  KeyManager,
  MemoryKeyRegistry,
  MemorySecretStore,
  MIN_SCRYPT_N,
  SoftwareKeyProvider,
} from "../../shared/keys";
import { silentLogger } from "../../shared/log";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { memoryHarness, serviceFor } from "../audit/support/harness";

const HOUR = 3_600_000;
let loop: DetectionLoop | undefined;
afterEach(async () => {
  await loop?.close();
  loop = undefined;
});

async function setup(wakeOnAppend: boolean) {
  const { service } = await serviceFor(memoryHarness());
  const store = new MemoryIncidentStore();
  const keyManager = new KeyManager({
    registry: new MemoryKeyRegistry(),
    provider: new SoftwareKeyProvider({
      secret: "s3cret",
      store: new MemorySecretStore(),
      scrypt: { N: MIN_SCRYPT_N, r: 8, p: 1 },
    }),
  });
  const ir = incidentResponse({
    config: configSchema.parse({ incidents: { enabled: true } }),
    store,
    audit: service,
    signer: await webcryptoSigner(seedOf(9), "service-1"),
    keyManager,
    log: silentLogger,
  });
  loop = startDetection(ir, {
    pollMs: HOUR,
    sweepEveryMs: HOUR,
    log: silentLogger,
    ...(wakeOnAppend ? { appended: (wake: () => void) => service.observe(wake) } : {}),
  });
  const replay = () =>
    service.append({
      eventType: "auth.failed",
      agentId: "kid-r",
      details: { code: "replay", detail: "nonce already used", source: "key:kid-r" },
    });
  const opened = async () => (await store.list({ limit: 10 })).length;
  return { replay, opened, store, service };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the Node detection loop", () => {
  it("wakes on an append in its process: the replay's incident opens without waiting for the poll", async () => {
    const { replay, opened } = await setup(true);
    await settle(200); // the first step (start-up) has run and the loop sleeps for the hour
    await replay();
    for (let i = 0; i < 200 && (await opened()) === 0; i++) await settle(50);
    expect(await opened()).toBe(1);
  });

  it("without the wake-up, the same append waits for the next poll", async () => {
    const { replay, opened } = await setup(false);
    await settle(200);
    await replay();
    await settle(2000);
    expect(await opened()).toBe(0);
  });

  it("a step that always fails (revoking a key Sigil does not know) is tried a bounded number of times, and the incident is audited once", async () => {
    const { replay, opened, store, service } = await setup(true);
    await settle(200);
    await replay();
    for (let i = 0; i < 200 && (await opened()) === 0; i++) await settle(50);
    await settle(1000);
    const [incident] = await store.list({ limit: 10 });
    const revokes = incident!.record.actions.filter((a) => a.action === "revoke");
    expect(revokes.map((a) => a.outcome)).toEqual(["failed", "failed", "failed"]);
    expect(incident!.record.state).toBe("open");
    const types = (await service.list(0, 1000)).events.map((e) => e.eventType);
    expect(types.filter((t) => t === "incident.opened")).toHaveLength(1);
  });
});
