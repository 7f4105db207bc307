// Test servers for discovery over the pinned fetch: HTTP(S) servers on a chosen loopback address
// that count their connections, a self-signed certificate for the test names (openssl), and a
// counter of every client socket this process opens (diagnostics_channel), so a test can show
// that a refused address was never connected to.
import { execFileSync } from "node:child_process";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Handler } from "./helpers";

/** The names the test certificate covers (Node refuses wildcards directly under a TLD). */
export const TLS_NAMES = [
  "tools.example",
  "rev.tools.example",
  "rebind.example",
  "redir.example",
  "rehop.example",
  "evil.example",
];

export interface TestCert {
  key: string;
  cert: string;
}

export function selfSignedCert(names: readonly string[] = TLS_NAMES): TestCert {
  const dir = mkdtempSync(join(tmpdir(), "sigil-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "2",
        "-subj",
        `/CN=${names[0]}`,
        "-addext",
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An HTTP or HTTPS server on one loopback address, with routes and a connection count. */
export class LoopbackServer {
  readonly routes = new Map<string, Handler>();
  readonly requests: { host: string | undefined; path: string }[] = [];
  connections = 0;
  port = 0;
  private server: Server | undefined;

  constructor(
    private readonly host = "127.0.0.1",
    private readonly tls?: TestCert,
  ) {}

  async start(port = 0): Promise<void> {
    const handler: Handler = (req, res) => {
      const path = (req.url ?? "").split("?")[0]!;
      this.requests.push({ host: req.headers.host, path });
      const h = this.routes.get(path);
      if (h) return h(req, res);
      res.writeHead(404).end("not found");
    };
    const server = this.tls ? createHttpsServer(this.tls, handler) : createHttpServer(handler);
    server.on(this.tls ? "secureConnection" : "connection", () => this.connections++);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, this.host, () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  json(path: string, body: unknown): void {
    this.routes.set(path, (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/**
 * Counts every outgoing connection attempt of this process while active: plain TCP client
 * sockets (`net.client.socket`) and HTTP(S) client requests (`http.client.request.start`; TLS
 * sockets are not published on the first channel).
 */
export class ConnectionWatch {
  readonly seen: string[] = [];
  private readonly onSocket = () => this.seen.push("socket");
  private readonly onRequest = (m: unknown) =>
    this.seen.push(`request ${(m as { request?: { host?: string } }).request?.host ?? "?"}`);

  start(): this {
    subscribe("net.client.socket", this.onSocket);
    subscribe("http.client.request.start", this.onRequest);
    return this;
  }

  stop(): void {
    unsubscribe("net.client.socket", this.onSocket);
    unsubscribe("http.client.request.start", this.onRequest);
  }

  /** What was attempted since `mark` (an earlier `seen.length`). */
  since(mark: number): string[] {
    return this.seen.slice(mark);
  }
}
