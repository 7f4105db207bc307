// A fetch handler (a Hono app) on a loopback port (a free one unless given), for tests that talk
// to it over HTTP. An app composed from a config answers only requests signed for its configured
// host:port (the default [auth] allowed_authorities): give it the port from freePort() both in
// its config (SIGIL_SERVER_PORT) and here.
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";

export async function serveOnLoopback(
  fetch: (request: Request) => Response | Promise<Response>,
  port = 0,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = serve({ fetch, port, hostname: "127.0.0.1" });
  await new Promise<void>((r) => server.once("listening", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
