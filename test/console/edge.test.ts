// GET /console on the edge (docs/console.md): the same bundle from Workers static assets
// (wrangler.toml [assets], the Worker first), with the same strict CSP and no cookie; a path
// outside the bundle's names is refused by the Worker rather than served by the assets layer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EdgeInstance, startEdge } from "../support/edge";
import { buildConsole } from "./support";

let edge: EdgeInstance;

beforeAll(async () => {
  buildConsole();
  edge = await startEdge();
}, 180_000);

afterAll(async () => edge?.stop());

describe("the web console on the edge", () => {
  it("serves the bundle with a strict CSP, no cookie, and nothing else of the directory", async () => {
    const res = await fetch(`${edge.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("connect-src 'self'");
    expect(res.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    expect(res.headers.get("set-cookie")).toBeNull();
    const html = await res.text();
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(`${edge.url}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect(js.headers.get("content-security-policy")).toContain("script-src 'self'");
    // The assets layer would serve these; the Worker answers first and refuses them.
    expect((await fetch(`${edge.url}/console/index.html`)).status).toBe(404);
    expect((await fetch(`${edge.url}/console/assets/nope.js`)).status).toBe(404);
  });
});
