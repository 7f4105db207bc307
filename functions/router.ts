// Every route module builds on this, so request validation fails the same way everywhere:
// 400 problem+json with field-level `errors`.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { NonceClaim } from "../shared/audit";
import type { KeyLimits } from "../shared/limits";
import { validationProblem } from "./middleware/errors";
import type { CallerLimits } from "./middleware/limits";
import { problemResponse } from "./problem";
import type { Recheck } from "./sse-feed";

export type AppEnv = {
  Variables: {
    requestId: string;
    keyid?: string;
    role?: string;
    subject?: string;
    /** The authenticated key's admin-set groups and code trust (its record, never the request). */
    groups?: readonly string[];
    trust?: number;
    /** A verified nonce the route reserves with its audit append (see authenticate's deferNonce). */
    nonceClaim?: NonceClaim;
    /** The limits an admin set on the caller's key record, if any. */
    keyLimits?: KeyLimits;
    /** The caller's quotas and how to spend them (rateLimits middleware). */
    limits?: CallerLimits;
    /** The client's network address, when the runtime knows it (aggregates auth failures). */
    clientAddress?: string;
    /** Checks the caller's key and quarantine again (long-lived streams, functions/sse-feed.ts). */
    recheck?: Recheck;
  };
};

export function router() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        return problemResponse(
          c,
          validationProblem(result.error, result.target === "json" ? "body" : result.target),
        );
      }
    },
  });
}
