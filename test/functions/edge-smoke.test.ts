import { afterAll, beforeAll, expect, it } from "vitest";
import { type EdgeInstance, startEdge } from "../support/edge";

let edge: EdgeInstance;
beforeAll(async () => {
  edge = await startEdge();
});
afterAll(async () => edge?.stop());

it("the edge app answers /health under workerd", async () => {
  const r = await fetch(`${edge.url}/health`);
  expect(r.status).toBe(200);
  expect(((await r.json()) as { status: string }).status).toBe("ok");
});
