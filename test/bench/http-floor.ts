// The HTTP bench's second anchor, run as its own process: a bare node:http server that does per
// request what the Node API must at least do, with the same libraries underneath and nothing
// else: read the body, SHA-256 it, verify an Ed25519 signature (node:crypto, thread pool), parse
// the JSON, sign an event (same), and store event + nonce in one Lua call to Redis. No RFC 9421
// parsing, routing, validation, policy, hash chain or Merkle tree. Prints "PORT <n>" when ready.
import { createHash, generateKeyPairSync, randomUUID, sign, verify } from "node:crypto";
import { createServer } from "node:http";
import { Redis } from "ioredis";

const prefix = process.env.FLOOR_PREFIX ?? "sigilfloor:";
const redis = new Redis(process.env.FLOOR_REDIS_URL ?? "redis://127.0.0.1:6379");
const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const signed = Buffer.from("x".repeat(300)); // about a signature base's size
const signature = sign(null, signed, privateKey);
const store = (await redis.script(
  "LOAD",
  "redis.call('SET', KEYS[1], '1', 'EX', 300, 'NX'); redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]); return 1",
)) as string;
let n = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    createHash("sha256").update(body).digest();
    verify(null, signed, publicKey, signature, (err, ok) => {
      if (err || !ok) return void res.writeHead(500).end();
      const request = JSON.parse(body.toString()) as unknown;
      const event = Buffer.from(JSON.stringify({ index: n++, request }));
      sign(null, event, privateKey, (err2, sig) => {
        if (err2) return void res.writeHead(500).end();
        redis
          .evalsha(store, 2, `${prefix}nonce:${randomUUID()}`, `${prefix}events`, n, sig)
          .then(() => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify({ decision: "allow", decisionId: randomUUID() }));
          })
          .catch(() => res.writeHead(503).end());
      });
    });
  });
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(`PORT ${typeof address === "object" && address ? address.port : 0}`);
});
process.on("SIGTERM", () => {
  server.close();
  redis.disconnect();
  process.exit(0);
});
