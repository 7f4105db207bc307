// The @authority values this service answers as (docs/http-api.md "Authentication"): a request
// signed for another service is refused, so a signature captured elsewhere cannot be replayed here.
import type { SigilConfig } from "./schema";

const UNSPECIFIED = new Set(["0.0.0.0", "::", "[::]"]);

/** host[:port] as a URL's `host` spells it: lower case, IPv6 in brackets. */
function authority(host: string, port: number): string {
  const h = host.toLowerCase();
  return `${h.includes(":") && !h.startsWith("[") ? `[${h}]` : h}:${port}`;
}

/**
 * `[auth] allowed_authorities` when set; otherwise the configured server host and port, plus
 * localhost, 127.0.0.1 and [::1] with that port for a local start. Never empty, so a default
 * configuration never accepts a request signed for any authority. A wildcard listen address
 * (0.0.0.0, ::) names no authority: behind it, set allowed_authorities to the public host[:port].
 */
export function allowedAuthorities(config: Pick<SigilConfig, "auth" | "server">): string[] {
  const configured = config.auth.allowed_authorities;
  if (configured.length > 0) return configured.map((a) => a.toLowerCase());
  const { host, port } = config.server;
  const hosts = [host, "localhost", "127.0.0.1", "::1"].filter((h) => !UNSPECIFIED.has(h));
  const out = new Set(hosts.map((h) => authority(h, port)));
  // A URL leaves out its scheme's default port: http://localhost:80 is signed as "localhost".
  if (port === 80 || port === 443) {
    for (const h of hosts) out.add(authority(h, port).replace(/:\d+$/, ""));
  }
  return [...out];
}
