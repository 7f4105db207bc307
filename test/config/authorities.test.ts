// The @authority values a default configuration answers as (docs/http-api.md "Authentication"): the
// service's own host and port, never "any".
import { describe, expect, it } from "vitest";
import { allowedAuthorities, loadConfig } from "../../shared/config";

const authorities = (env: Record<string, string>) => allowedAuthorities(loadConfig({ env }));

describe("allowedAuthorities", () => {
  it("defaults to the server's host and port, with localhost names for a local start", () => {
    expect(authorities({})).toEqual(["127.0.0.1:8787", "localhost:8787", "[::1]:8787"]);
    expect(authorities({ SIGIL_HOST: "Sigil.Internal", PORT: "9000" })).toEqual([
      "sigil.internal:9000",
      "localhost:9000",
      "127.0.0.1:9000",
      "[::1]:9000",
    ]);
  });

  it("a wildcard listen address names no authority; default ports are also matched bare", () => {
    expect(authorities({ SIGIL_HOST: "0.0.0.0" })).toEqual([
      "localhost:8787",
      "127.0.0.1:8787",
      "[::1]:8787",
    ]);
    expect(authorities({ SIGIL_HOST: "::", PORT: "80" })).toEqual([
      "localhost:80",
      "127.0.0.1:80",
      "[::1]:80",
      "localhost",
      "127.0.0.1",
      "[::1]",
    ]);
  });

  it("a configured list replaces the default (lower-cased as a URL's host is)", () => {
    expect(
      authorities({
        SIGIL_AUTH_ALLOWED_AUTHORITIES: '["API.sigil.example", "sigil.example:8443"]',
      }),
    ).toEqual(["api.sigil.example", "sigil.example:8443"]);
  });
});
