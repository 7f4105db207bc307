// Server-sent event streams (docs/http-api.md "Server-sent events"): the one loop behind
// /v1/incidents/events, /v1/approvals/events and /v1/jobs/:id/events. A stream outlives the
// request that authenticated it, so it checks the caller again every few seconds (key still
// usable, not quarantined, same role) and ends with an `end` event carrying the problem when it
// no longer is; it lasts at most `maxStreamMs` (the client reconnects with Last-Event-ID), sends a
// comment line after a quiet `heartbeatMs`, and refuses a malformed Last-Event-ID with a 400. A
// Last-Event-ID gets here only covered by the verified signature (authentication refuses it
// otherwise: shared/httpsig defaultComponents), so nobody on the path chose where this resumes.
import type { Context, MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import type { KeyResolver } from "../shared/httpsig";
import type { QuarantineService } from "../shared/quarantine";
import type { AuthKey } from "./middleware/auth";
import { Problem, problemTypeBase } from "./problem";
import type { AppEnv } from "./router";

export interface FeedEvent {
  id: string;
  event: string;
  data: unknown;
}

export interface FeedRead {
  events: FeedEvent[];
  /** The position after this read (it may pass changes the caller may not see). */
  after: string | undefined;
}

export interface FeedTiming {
  /** How long one stream lasts. */
  maxStreamMs: number;
  /** A comment line after this long without an event (proxies drop silent connections). */
  heartbeatMs?: number;
  /** How often the caller's authorization is checked again while the stream is open. */
  recheckMs?: number;
}

export interface Feed extends FeedTiming {
  /** What a Last-Event-ID of this stream looks like; anything else is a 400. */
  lastEventId: RegExp;
  /** Where a stream without Last-Event-ID starts (undefined: the source's beginning). */
  start(): Promise<string | undefined>;
  /** The events after `after`, waiting up to `waitMs` for one; [] when none came. */
  read(after: string | undefined, waitMs: number, signal: AbortSignal): Promise<FeedRead>;
  /** The stream ends after an event for which this is true (a job's `finished`). */
  isLast?(e: FeedEvent): boolean;
}

/** Why the caller may no longer read: the problem the stream ends with. */
export interface Revoked {
  status: 401 | 403;
  type: "key-unknown" | "quarantined" | "forbidden";
  detail: string;
}

/** Checks the authenticated caller again (set per request by the app, functions/app.ts). */
export type Recheck = () => Promise<Revoked | undefined>;

/**
 * Puts the caller's re-check on the context (after authentication and the quarantine check): the
 * same key resolution and quarantine lookup a new request would get, and the same role.
 */
export function attachRecheck(
  resolveKey: KeyResolver<AuthKey>,
  quarantine: Pick<QuarantineService, "forRequest">,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const kid = c.get("keyid");
    const role = c.get("role");
    const subject = c.get("subject");
    if (kid !== undefined)
      c.set("recheck", async () => {
        const k = await resolveKey(kid);
        if (k.status !== "active")
          return {
            status: 401,
            type: "key-unknown",
            detail: `key ${kid} is ${k.status}${k.reason ? ` (${k.reason})` : ""}`,
          };
        if (k.role !== role)
          return { status: 403, type: "forbidden", detail: `key ${kid} is now ${k.role}` };
        const q = await quarantine.forRequest({
          kid,
          subject: subject === undefined || subject === "" ? null : subject,
        });
        if (q)
          return {
            status: 403,
            type: "quarantined",
            detail: `${q.target.kind === "key" ? "this key" : "this key's subject"} is quarantined (${q.id})`,
          };
        return undefined;
      });
    await next();
  };
}

/** Longest Last-Event-ID read at all; every stream's ids are far shorter. */
const MAX_LAST_EVENT_ID = 64;

export const FEED_DEFAULTS = { heartbeatMs: 15_000, recheckMs: 5_000 } as const;

export async function serveFeed(c: Context<AppEnv>, feed: Feed): Promise<Response> {
  const recheck = c.get("recheck");
  // Fail closed: a stream nobody can re-check is not opened.
  if (!recheck) throw new Problem(503, "unavailable", "Unavailable", "no authorization re-check");
  const last = c.req.header("last-event-id");
  let after: string | undefined;
  if (last !== undefined) {
    if (last.length > MAX_LAST_EVENT_ID || !feed.lastEventId.test(last))
      throw new Problem(400, "validation", "Request failed validation", "malformed Last-Event-ID", [
        { path: "headers.last-event-id", message: "not an event id of this stream" },
      ]);
    after = last;
  } else {
    after = await feed.start();
  }
  const heartbeatMs = feed.heartbeatMs ?? FEED_DEFAULTS.heartbeatMs;
  const recheckMs = feed.recheckMs ?? FEED_DEFAULTS.recheckMs;
  return streamSSE(c, async (stream) => {
    const abort = new AbortController();
    stream.onAbort(() => abort.abort());
    const deadline = Date.now() + feed.maxStreamMs;
    let quietSince = Date.now();
    let nextCheck = Date.now() + recheckMs;
    while (!abort.signal.aborted) {
      const now = Date.now();
      if (now >= deadline) return;
      if (now >= nextCheck) {
        // A store that cannot answer ends the stream too: it is never an allow.
        const revoked = await recheck().catch(
          (e: unknown): Revoked => ({
            status: 403,
            type: "forbidden",
            detail: `authorization could not be checked: ${(e as Error).message}`,
          }),
        );
        if (revoked) {
          await stream.writeSSE({
            event: "end",
            data: JSON.stringify({
              type: problemTypeBase + revoked.type,
              title: "Stream ended",
              status: revoked.status,
              detail: revoked.detail,
            }),
          });
          return;
        }
        nextCheck = Date.now() + recheckMs;
      }
      const waitMs = Math.max(
        1,
        Math.min(nextCheck, deadline, quietSince + heartbeatMs) - Date.now(),
      );
      const got = await feed.read(after, waitMs, abort.signal);
      after = got.after;
      for (const e of got.events) {
        await stream.writeSSE({ id: e.id, event: e.event, data: JSON.stringify(e.data) });
        quietSince = Date.now();
        if (feed.isLast?.(e)) return;
      }
      if (got.events.length === 0 && Date.now() - quietSince >= heartbeatMs) {
        await stream.write(": keep-alive\n\n");
        quietSince = Date.now();
      }
    }
  });
}

/**
 * A polled change feed's read (incidents, approvals): the next changes after the cursor, each
 * rendered as it is now (undefined: not shown to this caller), else a sleep of `waitMs` at most
 * `pollMs`.
 */
export function pollChanges(opts: {
  event: string;
  pollMs: number;
  changes(after: string, limit: number): Promise<{ id: string; cursor: string }[]>;
  render(id: string): Promise<unknown>;
}): Feed["read"] {
  return async (after, waitMs, signal) => {
    const from = after ?? "0";
    const batch = await opts.changes(from, 100);
    const events: FeedEvent[] = [];
    for (const ch of batch) {
      const data = await opts.render(ch.id);
      if (data !== undefined) events.push({ id: ch.cursor, event: opts.event, data });
    }
    if (batch.length === 0) await sleep(Math.min(opts.pollMs, waitMs), signal);
    return { events, after: batch.at(-1)?.cursor ?? from };
  };
}

/** The cursor pattern of the change feeds (a Redis stream id or a counter). */
export const CHANGE_CURSOR = /^\d{1,20}(-\d{1,20})?$/;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
