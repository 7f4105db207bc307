// Test servers for the egress tests and bench, run inside a network namespace the test creates
// (test/sandbox/egress-netns.ts): https (the test CA's certificate), http, and a raw TCP service,
// on fixed ports of the namespace's own address. Each request is reported on stdout as a line
// `hit <kind>` so the test can tell that a refused connection carried no bytes to them.
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
// A sink for throughput: counts nothing, echoes nothing, answers the byte count at the end.
const sink = createTcp((s) => {
  let n = 0;
  s.on("data", (d) => {
    n += d.length;
  });
  s.on("end", () => s.end(`${n}\n`));
});
let up = 0;
for (const [srv, port] of [
  [https, 8443],
  [http, 8080],
  [tcp, 7000],
  [sink, 7001],
])
  srv.listen(port, host, () => {
    if (++up === 4) process.stdout.write("ready\n");
  });
