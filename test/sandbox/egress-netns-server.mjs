// Test servers for the egress tests and bench, run inside a network namespace the test creates
// (test/sandbox/egress-netns.ts): https (the test CA's certificate), http, a raw TCP service and a
// byte stream (throughput), on fixed ports of the namespace's own address. Each request is
// reported on stdout as a line `hit <kind>` so a test can tell that a refusal reached none of them.
import { readFileSync } from "node:fs";
import { createServer as createHttp } from "node:http";
import { createServer as createHttps } from "node:https";
import { createServer as createTcp } from "node:net";

const [host, certPath, keyPath] = process.argv.slice(2);
const hit = (kind) => process.stdout.write(`hit ${kind}\n`);
const body = (req) =>
  req.url?.startsWith("/big/")
    ? Buffer.alloc(Math.min(Number(req.url.slice(5)) || 0, 256 * 1024 * 1024), 1)
    : Buffer.from(`${req.headers.host}`);
const handler = (kind) => (req, res) => {
  if (!req.url?.startsWith("/big/")) hit(kind);
  res.end(body(req));
};
const https = createHttps(
  { cert: readFileSync(certPath), key: readFileSync(keyPath) },
  handler("https"),
);
const http = createHttp(handler("http"));
const tcp = createTcp((s) => {
  hit("tcp");
  s.end("tcp hello\n");
});
// A stream for throughput: the client sends a byte count and a newline, gets that many bytes.
const chunk = Buffer.alloc(64 * 1024, 7);
const stream = createTcp((s) => {
  s.on("error", () => {});
  let head = "";
  const onData = (d) => {
    head += d.toString("latin1");
    if (!head.includes("\n")) return;
    s.off("data", onData);
    let left = Math.min(Number.parseInt(head, 10) || 0, 1024 * 1024 * 1024);
    const pump = () => {
      while (left > 0) {
        const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= c.length;
        if (!s.write(c)) return void s.once("drain", pump);
      }
      s.end();
    };
    pump();
  };
  s.on("data", onData);
});
let up = 0;
for (const [srv, port] of [
  [https, 8443],
  [http, 8080],
  [tcp, 7000],
  [stream, 7002],
])
  srv.listen(port, host, () => {
    if (++up === 4) process.stdout.write("ready\n");
  });
