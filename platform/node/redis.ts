// The one place a Node process (API, worker, BullMQ, tests of the deployment) opens a Redis
// connection from `[redis]`: a plain or TLS URL, or the primary that Sentinel names, with this
// component's ACL user (docs/deployment.md). Every duplicate (pub/sub, BullMQ's blocking client)
// inherits the same options, so all of them follow a failover.
import { readFileSync } from "node:fs";
import { Redis, type RedisOptions } from "ioredis";
import type { SigilConfig } from "../../shared/config";

export type RedisSettings = SigilConfig["redis"];

/** ioredis options for `[redis]`, merged with the caller's (retry policy, lazyConnect, ...). */
export function redisOptions(r: RedisSettings, extra: RedisOptions = {}): RedisOptions {
  const url = new URL(r.url);
  const tls = url.protocol === "rediss:";
  const ca = r.tls_ca_file ? readFileSync(r.tls_ca_file) : undefined;
  const tlsOptions = tls ? { ...(ca ? { ca } : {}), servername: url.hostname } : undefined;
  const username = r.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = r.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  const common: RedisOptions = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(Number.isSafeInteger(db) && db > 0 ? { db } : {}),
    // A demoted primary (or a replica a stale address points at) answers writes with READONLY:
    // reconnect, which asks Sentinel again, and resend the command.
    reconnectOnError: (e) => (e.message.startsWith("READONLY") ? 2 : false),
    // Reconnect promptly but not in a tight loop while Sentinel is still electing.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
  if (r.sentinels.length === 0) {
    return {
      host: url.hostname || "127.0.0.1",
      port: url.port ? Number(url.port) : 6379,
      ...common,
      ...(tlsOptions ? { tls: tlsOptions } : {}),
      ...extra,
    };
  }
  return {
    sentinels: r.sentinels.map((hp) => {
      const i = hp.lastIndexOf(":");
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    }),
    name: r.master_name,
    role: "master",
    ...(r.sentinel_username ? { sentinelUsername: r.sentinel_username } : {}),
    ...(r.sentinel_password ? { sentinelPassword: r.sentinel_password } : {}),
    // No +switch-master subscription (ioredis' failoverDetector): in ioredis 6.0.0 a
    // +switch-master that arrives while a client is reconnecting (its primary just died) ends
    // that client for good ("Connection is closed."), which test/deploy/failover-stack.test.ts
    // hit with three API processes. A client instead follows when its connection to the old
    // primary fails (kill -9) or a write is answered READONLY (a demoted primary): it asks the
    // Sentinels again. docs/deployment.md "Redis connections".
    failoverDetector: false,
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    ...(tlsOptions
      ? { tls: tlsOptions, enableTLSForSentinelMode: true, sentinelTLS: tlsOptions }
      : {}),
    ...common,
    ...extra,
  };
}

/** Where `[redis]` points, for messages (never the password). */
export function describeRedis(r: RedisSettings): string {
  if (r.sentinels.length > 0)
    return `sentinel master "${r.master_name}" via ${r.sentinels.join(", ")}`;
  const url = new URL(r.url);
  return `${url.protocol}//${url.host}`;
}

/** A connection for `[redis]`. */
export function connectRedis(r: RedisSettings, extra: RedisOptions = {}): Redis {
  return new Redis(redisOptions(r, extra));
}
