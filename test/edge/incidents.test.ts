// Incident response on the edge (docs/incidents.md "Running it"): no process outlives a request,
// so workerd steps detection after responses (waitUntil). A key replaying a request under
// `wrangler dev` is detected with the traffic that follows, quarantined and revoked there too.
import { afterAll, beforeAll, expect, it } from "vitest";
import { Sigil, SigilError } from "../../sdk";
import { publicJwk } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { type EdgeInstance, startEdge } from "../support/edge";
import { newKey, type TestKey } from "../support/targets";

let edge: EdgeInstance;
let admin: Sigil;
let adminKey: TestKey;

beforeAll(async () => {
  adminKey = await newKey();
  edge = await startEdge({
    SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(adminKey.publicKey, { kid: adminKey.kid })]),
    SIGIL_INCIDENTS_ENABLED: "true",
  });
  admin = new Sigil({
    baseUrl: edge.url,
    keyId: adminKey.kid,
    signer: adminKey.signer,
    retries: 0,
  });
}, 120_000);
afterAll(async () => edge?.stop());

it("a replayed request: detected after the responses that follow, the key quarantined and revoked", async () => {
  const key = await newKey();
  await admin.keys.create({
    role: "agent",
    subject: "edge-replayer",
    publicKey: toBase64Url(key.publicKey),
  });
  // Any signed request serves (the agent's role may not read it: the replay is refused first).
  const url = `${edge.url}/v1/incidents/emergency`;
  const headers = new Headers();
  const sig = await signRequest({ method: "GET", url, headers }, key.signer, { keyid: key.kid });
  for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
  expect((await fetch(url, { headers })).status).toBe(403);
  const replayed = await fetch(url, { headers });
  expect(replayed.status).toBe(401);

  // Every response (the admin's polling included) is followed by a detection step.
  let incidentId = "";
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { incidents } = await admin.incidents.list();
    const found = incidents.find((i) => i.keys.includes(key.kid));
    incidentId = found?.incidentId ?? "";
    if (found?.state === "mitigated") break;
    await new Promise((r) => setTimeout(r, 300));
  }
  const incident = await admin.incidents.get(incidentId);
  expect([incident.detector, incident.severity, incident.state]).toEqual([
    "replay",
    "high",
    "mitigated",
  ]);
  const { quarantines } = await admin.quarantine.list({ active: "true" });
  expect(quarantines.find((q) => q.incidentId === incidentId)?.target).toEqual({
    kind: "key",
    kid: key.kid,
  });
  expect((await admin.keys.get(key.kid)).status).toBe("revoked");
  const agent = new Sigil({ baseUrl: edge.url, keyId: key.kid, signer: key.signer, retries: 0 });
  const refused = await agent.incidents.emergency().then(
    () => null,
    (e: unknown) => (e instanceof SigilError ? e.code : String(e)),
  );
  expect(refused).toBe("key-unknown");
}, 180_000);
