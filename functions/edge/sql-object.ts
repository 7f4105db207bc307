// The base of Sigil's Durable Objects: SQLite-backed, tables created on construction (idempotent
// DDL), and a `ping` RPC for /health.
import { DurableObject } from "cloudflare:workers";
import type { DurableObjectState } from "./runtime";

export abstract class SqlObject<Env = unknown> extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env, schema: string) {
    super(ctx, env);
    ctx.storage.sql.exec(schema);
  }

  protected get sql() {
    return this.ctx.storage.sql;
  }

  ping(): string {
    return "ok";
  }
}
