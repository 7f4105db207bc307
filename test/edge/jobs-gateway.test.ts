// The edge's JobsBackend client: each call is a signed POST to the Node gateway, and anything but a
// well-formed 2xx reply is a rejection (fail closed). The gateway here is a stand-in that checks the
// RFC 9421 signature the way the Node side would.
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayJobsBackend } from "../../functions/edge/jobs/gateway";
import {
  createSigner,
  ed25519Kid,
  generateEd25519KeyPair,
  verifyEd25519,
} from "../../shared/crypto";
import { MemoryReplayCache, type Signer, verifyRequest } from "../../shared/httpsig";

let server: Server;
let base = "";
const seen: { op: string; args: unknown[]; verified: boolean }[] = [];
let reply: (op: string) => { status: number; body: string } = () => ({
  status: 200,
  body: '{"result":null}',
});
let publicKey: Uint8Array;
let signer: Signer;

beforeAll(async () => {
  const kp = await generateEd25519KeyPair();
  publicKey = kp.publicKey;
  const replay = new MemoryReplayCache();
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const headers = Object.entries(req.headers).map(([k, v]) => [k, String(v)] as [string, string]);
    const v = await verifyRequest(
      { method: req.method ?? "POST", url: `${base}${req.url}`, headers, body },
      {
        resolveKey: async (kid) =>
          kid === ed25519Kid(publicKey) ? { status: "active", publicKey } : { status: "unknown" },
        verify: verifyEd25519,
        replayCache: replay,
      },
    );
    const op = (req.url ?? "").split("/").pop() ?? "";
    seen.push({ op, args: (JSON.parse(body) as { args: unknown[] }).args, verified: v.ok });
    const r = reply(op);
    res.writeHead(r.status, { "content-type": "application/json" }).end(r.body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  signer = await createSigner(kp.secretKey, ed25519Kid(kp.publicKey));
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const backend = () => new GatewayJobsBackend({ baseUrl: `${base}/`, signer });

describe("GatewayJobsBackend", () => {
  it("forwards each call as a signed POST with its arguments", async () => {
    reply = () => ({ status: 200, body: '{"result":null}' });
    expect(await backend().get("job-1")).toBeNull();
    expect(await backend().events("job-1", undefined, 10)).toBeNull();
    expect(seen.slice(-2)).toEqual([
      { op: "get", args: ["job-1"], verified: true },
      { op: "events", args: ["job-1", null, 10], verified: true },
    ]);
  });

  it("rejects on an error status or a malformed reply", async () => {
    reply = () => ({ status: 503, body: "{}" });
    await expect(backend().get("job-2")).rejects.toThrow(/503/);
    reply = () => ({ status: 200, body: '{"nope":1}' });
    await expect(backend().get("job-2")).rejects.toThrow(/malformed/);
  });

  it("rejects when the gateway is unreachable", async () => {
    const b = new GatewayJobsBackend({ baseUrl: "http://127.0.0.1:9", signer });
    await expect(b.get("job-3")).rejects.toThrow();
  });
});
