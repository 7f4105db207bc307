// The edge (workerd) cannot load a native PKCS#11 module: an HSM configuration refuses to compose,
// says why in its log, and every request is 503; no service key is created in software.
import { afterAll, beforeAll, expect, it } from "vitest";
import { type EdgeInstance, startEdge } from "../support/edge";

let edge: EdgeInstance;
beforeAll(async () => {
  edge = await startEdge({
    SIGIL_KEY_STORE_TYPE: "hsm",
    SIGIL_HSM_CONFIG_PATH: "/etc/sigil/hsm.json",
  });
});
afterAll(async () => {
  await edge?.stop();
});

it("an HSM configuration on the edge answers 503 and logs that the edge has no PKCS#11 provider", async () => {
  const health = await fetch(`${edge.url}/health`);
  expect(health.status).toBe(503);
  const jwks = await fetch(`${edge.url}/.well-known/sigil/keys`);
  expect(jwks.status).toBe(503);
  const deadline = Date.now() + 10_000;
  while (!edge.output().includes("no PKCS#11 KeyProvider") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(edge.output()).toMatch(
    /this runtime has no PKCS#11 KeyProvider \(the edge cannot load a native PKCS#11 module; run the Node API for HSM keys\); refusing to fall back to software keys/,
  );
});
