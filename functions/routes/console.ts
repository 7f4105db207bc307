// GET /console: the web console's static bundle (docs/console.md), unauthenticated like any
// static page: it holds no data, and every call it makes is signed in the browser. Strict CSP (no
// inline script, connect-src 'self'), no cookie, nothing cached but the content-hashed assets.
import { Hono } from "hono";
import { Problem } from "../problem";

/** Reads one file of the bundle ("index.html", "assets/<name>"); undefined when it is absent. */
export type ConsoleAssets = (
  path: string,
) => Promise<{ body: ArrayBuffer | Uint8Array<ArrayBuffer>; type: string } | undefined>;

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const ASSET = /^assets\/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.(js|css)$/;

export function contentTypeOf(path: string): string {
  if (path.endsWith(".js")) return "text/javascript; charset=utf-8";
  if (path.endsWith(".css")) return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

export function consoleRoutes(assets: ConsoleAssets | undefined): Hono {
  const app = new Hono();
  const serve = async (path: string, immutable: boolean) => {
    const file = assets ? await assets(path) : undefined;
    if (!file) {
      if (path !== "index.html") return undefined;
      throw new Problem(
        503,
        "unavailable",
        "Console not built",
        "the console bundle is missing: run `bash infra/console.sh` (npm start does)",
      );
    }
    return new Response(file.body, {
      headers: {
        "content-type": file.type,
        "content-security-policy": CONSOLE_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-resource-policy": "same-origin",
        "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
      },
    });
  };
  const notFound = (path: string) =>
    new Problem(404, "not-found", "Not found", `the console has no file ${path}`);
  const index = async () => {
    const res = await serve("index.html", false);
    if (!res) throw notFound("index.html");
    return res;
  };
  app.get("/console", index);
  app.get("/console/", index);
  app.get("/console/:path{.+}", async (c) => {
    const path = c.req.param("path");
    // Only the bundle's own names: no traversal, no other file of the directory.
    const res = ASSET.test(path) ? await serve(path, true) : undefined;
    if (!res) throw notFound(path);
    return res;
  });
  return app;
}
