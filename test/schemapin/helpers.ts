// Test support for SchemaPin: fixture loading, key generation/signing, a real local HTTP server.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as ed from "@noble/ed25519";
import { sha256Bytes, toBase64 } from "../../shared/encoding";
import { canonicalSchemaBytes } from "../../shared/schemapin/canonical";
import { p1363ToDer } from "../../shared/schemapin/der";
import { spkiFromRaw, spkiToPem } from "../../shared/schemapin/keys";
import { vectorPath } from "../support/vectors";

export interface SignedFixture {
  schema: Record<string, unknown>;
  signature: string;
}
export interface WellKnown {
  schema_version: string;
  developer_name: string;
  public_key_pem: string;
  revoked_keys?: string[];
  contact?: string;
  revocation_endpoint?: string;
}

export const fixtureText = (...p: string[]): string =>
  readFileSync(vectorPath("schemapin", ...p), "utf8");
export const fixtureJson = <T>(...p: string[]): T => JSON.parse(fixtureText(...p)) as T;

export const FIXTURES = ["python", "javascript", "go-client"] as const;
export const signedFixture = (lang: string): SignedFixture =>
  fixtureJson<SignedFixture>(lang, "demo_schema_signed.json");
export const wellKnownFixture = (lang: string): WellKnown =>
  fixtureJson<WellKnown>(lang, "demo_well_known.json");

const u8 = (b: ArrayBuffer): Uint8Array => new Uint8Array(b);

export interface TestSigner {
  pem: string;
  /** schemapin-v1 (double hash) for ECDSA, SHA-256(canonical) for Ed25519. */
  signSchema(schema: unknown): Promise<string>;
  /** Go SDK variant: ECDSA over the single hash. */
  signSchemaSingleHash(schema: unknown): Promise<string>;
}

export async function p256Signer(): Promise<TestSigner> {
  const kp = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const spki = u8(await crypto.subtle.exportKey("spki", kp.publicKey));
  const sign = async (msg: Uint8Array) =>
    toBase64(
      p1363ToDer(
        u8(
          await crypto.subtle.sign(
            { name: "ECDSA", hash: "SHA-256" },
            kp.privateKey,
            new Uint8Array(msg),
          ),
        ),
      ),
    );
  return {
    pem: spkiToPem(spki),
    signSchema: (schema) => sign(sha256Bytes(canonicalSchemaBytes(schema))),
    signSchemaSingleHash: (schema) => sign(canonicalSchemaBytes(schema)),
  };
}

export async function ed25519Signer(): Promise<TestSigner> {
  const { secretKey, publicKey } = await ed.keygenAsync();
  const sign = async (schema: unknown) =>
    toBase64(await ed.signAsync(sha256Bytes(canonicalSchemaBytes(schema)), secretKey));
  return {
    pem: spkiToPem(spkiFromRaw("Ed25519", publicKey)),
    signSchema: sign,
    signSchemaSingleHash: sign,
  };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real HTTP server on 127.0.0.1 with a mutable route table (path → handler). */
export class TestServer {
  readonly routes = new Map<string, Handler>();
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const h = this.routes.get((req.url ?? "").split("?")[0]!);
      if (h) return h(req, res);
      res.writeHead(404).end("not found");
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  base(prefix: string): string {
    return `http://127.0.0.1:${this.port}/${prefix}`;
  }

  json(path: string, body: unknown, status = 200): void {
    this.routes.set(path, (_req, res) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
