// Body-size limit (413) that decides from Content-Length when there is one. Hono's bodyLimit
// first tests `c.req.raw.body`, which on Node makes @hono/node-server build a full web Request
// with a stream over the socket (about a tenth of a small request's CPU); a declared length needs
// no stream: Node's parser never delivers more bytes than it. A body without a length (chunked)
// still goes through Hono's bodyLimit, which counts while it reads.
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit as streamingLimit } from "hono/body-limit";

export interface BodyLimitOptions {
  maxSize: number;
  onError: (c: Context) => Response | Promise<Response>;
}

export function bodyLimit(opts: BodyLimitOptions): MiddlewareHandler {
  const streaming = streamingLimit(opts);
  return async (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return next();
    const length = c.req.header("content-length");
    if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
      if (!/^\d+$/.test(length) || Number(length) > opts.maxSize) return opts.onError(c);
      return next();
    }
    return streaming(c, next);
  };
}
