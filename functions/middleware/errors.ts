// Every error leaves as problem+json; nothing internal (stack, message of a crash) leaks out.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ZodError } from "zod";
import type { Logger } from "../../shared/log";
import { Problem, problemResponse } from "../problem";

export function validationProblem(error: ZodError, where = "body"): Problem {
  return new Problem(
    400,
    "validation",
    "Request failed validation",
    `the ${where} does not match the schema`,
    error.issues.map((i) => ({
      path: i.path.map(String).join(".") || "(root)",
      message: i.message,
    })),
  );
}

export function onError(log: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof Problem) return problemResponse(c, err);
    if (err instanceof HTTPException) {
      const status = err.status;
      if (status === 413) {
        return problemResponse(
          c,
          new Problem(413, "body-too-large", "Request body too large", err.message),
        );
      }
      if (status === 415) {
        // The route's body is JSON and the request's Content-Type is not a JSON media type.
        return problemResponse(
          c,
          new Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
          ),
        );
      }
      if (status === 400) {
        return problemResponse(
          c,
          new Problem(400, "invalid-json", "Malformed request body", err.message),
        );
      }
      return problemResponse(c, new Problem(status as 400, "internal", err.message || "Error"));
    }
    log.error("unhandled error", { err: err.stack ?? String(err), path: c.req.path });
    return problemResponse(
      c,
      new Problem(500, "internal", "Internal error", "the request failed; it was logged"),
    );
  };
}

export const notFoundHandler = (c: Context): Response =>
  problemResponse(
    c,
    new Problem(404, "not-found", "Not found", `no route for ${c.req.method} ${c.req.path}`),
  );
