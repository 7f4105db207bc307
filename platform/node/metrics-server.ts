// The separate, unsigned metrics address (`[metrics] listen` for the API, `worker_listen` for a
// worker; docs/operating.md "Metrics and traces"): GET /metrics only, for a scraper on a private
// network. The public port never serves metrics without a signature.
import { createServer, type Server } from "node:http";

export interface MetricsSource {
  expose(): Promise<{ contentType: string; body: string }>;
}

/** "host:port" (IPv6 in brackets) → host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(":");
  const host = listen.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  const port = Number(listen.slice(at + 1));
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`metrics listen address "${listen}" must be host:port`);
  return { host, port };
}

/** Serves `source` on `listen`; resolves with the server and its bound port once listening. */
export function serveMetrics(
  listen: string,
  source: MetricsSource,
  onError: (e: unknown) => void,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const { host, port } = parseListen(listen);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    source.expose().then(
      ({ contentType, body }) => {
        res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (e: unknown) => {
        onError(e);
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const addr = server.address();
      resolve({
        server,
        port: typeof addr === "object" && addr ? addr.port : port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
