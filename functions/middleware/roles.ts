// Role checks after authentication. The auth middleware sets c.var.keyid / role / subject from
// the verified RFC 9421 signature; a request outside its role is 403 `forbidden`.
import type { MiddlewareHandler } from "hono";
import { Problem } from "../problem";
import type { AppEnv } from "../router";

export type Role = "admin" | "agent" | "worker" | "auditor" | "gateway";

export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const role = c.get("role");
    if (!role || !roles.includes(role as Role)) {
      throw new Problem(
        403,
        "forbidden",
        "Forbidden",
        `this operation needs role ${roles.join(" or ")}; key ${c.get("keyid") ?? "(none)"} has ${role ?? "no role"}`,
      );
    }
    await next();
  };
}
