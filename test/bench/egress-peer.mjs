// The client and the server of the egress bench's micro row (test/bench/egress.ts), in a process
// of their own so that the proxy (in the bench's process, as in the worker) does not share their
// event loop: a production proxy runs in the worker, its client in a job container, its server
// elsewhere. Prints `port <n>` once the server listens; on a stdin line `go <proxyHost>
// <proxyPort>` measures direct and through the proxy, interleaved, and prints one JSON line.
import { connect, createServer } from "node:net";
import { createInterface } from "node:readline";

const SETUPS = Number(process.env.EGRESS_SETUPS ?? 300);
const BULK_BYTES = Number(process.env.EGRESS_BULK_BYTES ?? 128 * 1024 * 1024);
const BULK_RUNS = 5;
const SERVER_HOST = "127.0.0.1";

const chunk = Buffer.alloc(64 * 1024, 7);
// One byte `b` asks for a stream of BULK_BYTES; anything else is echoed.
const server = createServer((s) => {
  s.on("error", () => {});
  s.once("data", (d) => {
    if (d[0] !== 0x62) {
      s.write(d);
      s.on("data", () => {});
      return;
    }
    let sent = 0;
    const pump = () => {
      while (sent < BULK_BYTES + chunk.length) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once("drain", pump);
      }
    };
    pump();
  });
});

function open(port, host, connectTarget) {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    s.once("error", reject);
    s.once("connect", () => {
      if (!connectTarget) return resolve(s);
      s.write(`CONNECT ${connectTarget} HTTP/1.1\r\nHost: ${connectTarget}\r\n\r\n`);
      let buf = "";
      const onData = (d) => {
        buf += d.toString("latin1");
        if (!buf.includes("\r\n\r\n")) return;
        s.off("data", onData);
        if (!buf.startsWith("HTTP/1.1 200")) reject(new Error(buf.split("\r\n")[0]));
        else resolve(s);
      };
      s.on("data", onData);
    });
  });
}

/** Connect, send one byte, get the echo: the set-up cost an agent's request pays. */
async function setup(port, host, target) {
  const t0 = performance.now();
  const s = await open(port, host, target);
  await new Promise((r) => {
    s.once("data", () => r());
    s.write("x");
  });
  const dt = performance.now() - t0;
  s.destroy();
  return dt;
}

/** Bytes per second the server streams to the client until BULK_BYTES have arrived. */
async function bulk(port, host, target) {
  const s = await open(port, host, target);
  const t0 = performance.now();
  let got = 0;
  await new Promise((r) => {
    s.on("data", (d) => {
      got += d.length;
      if (got >= BULK_BYTES) r();
    });
    s.write("b");
  });
  const dt = performance.now() - t0;
  s.destroy();
  return (got / dt) * 1000;
}

server.listen(0, SERVER_HOST, () => {
  const port = server.address().port;
  process.stdout.write(`port ${port}\n`);
  createInterface({ input: process.stdin }).once("line", async (line) => {
    const [, proxyHost, proxyPort] = line.split(" ");
    const via = [Number(proxyPort), proxyHost, `${SERVER_HOST}:${port}`];
    const r = { setupDirect: [], setupProxied: [], bulkDirect: [], bulkProxied: [] };
    // Interleaved so load on the shared machine hits both alike.
    for (let i = 0; i < SETUPS; i++) {
      r.setupDirect.push(await setup(port, SERVER_HOST));
      r.setupProxied.push(await setup(...via));
    }
    for (let i = 0; i < BULK_RUNS; i++) {
      r.bulkDirect.push(await bulk(port, SERVER_HOST));
      r.bulkProxied.push(await bulk(...via));
    }
    process.stdout.write(`${JSON.stringify(r)}\n`);
    server.close();
    process.stdin.destroy();
  });
});
