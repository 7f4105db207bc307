// Key registry (admin), signature verification and service-held signing (docs/http-api.md "Keys",
// "Signatures"), and the public JWK Set under /.well-known/sigil/keys.
import { createRoute, z } from "@hono/zod-openapi";
import {
  CryptoError,
  ed25519Kid,
  publicJwk,
  publicKeyFromJwk,
  verifyEd25519,
} from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";
import {
  HELD_SIGNATURE_CONTEXT,
  HELD_SUBJECT_PREFIX,
  heldSignatureInput,
  heldSubject,
  isHeldKey,
  KEY_GROUP_LIMITS,
  KEY_ROLES,
  KEY_STATUSES,
  type KeyChange,
  type KeyManager,
  type KeyRecord,
  type KeyRegistry,
  KeyRegistryError,
  keyAuditEvent,
  keyGroupsSchema,
  keyTrustSchema,
  usableForNewRequest,
} from "../../shared/keys";
import { keyLimitsSchema } from "../../shared/limits";
import type { AuditFn } from "../audit-sink";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { notFound, Problem } from "../problem";
import { router } from "../router";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const b64url = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9_-]*$/, "must be base64url");
const kidParam = z.object({ kid: z.string().min(1).max(128) });
const publicKeyInput = z.union([
  b64url(64).describe("raw Ed25519 public key, base64url"),
  z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string() }).loose(),
]);

const keyView = z.object({
  kid: z.string(),
  role: z.string(),
  subject: z.string(),
  status: z.enum(["active", "rotated", "revoked"]),
  publicJwk: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  notBefore: z.string(),
  expiresAt: z.string().optional(),
  rotatedAt: z.string().optional(),
  revokedAt: z.string().optional(),
  rotatedTo: z.string().optional(),
  rotatedFrom: z.string().optional(),
  groups: z.array(z.string()),
  trust: z.number(),
  limits: keyLimitsSchema.optional(),
});

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function viewKey(r: KeyRecord) {
  return {
    kid: r.kid,
    role: r.role,
    subject: r.subject,
    status: r.status,
    publicJwk: publicJwk(r.publicKey, { kid: r.kid }) as Record<string, unknown>,
    createdAt: iso(r.createdAt)!,
    notBefore: iso(r.notBefore)!,
    ...(r.expiresAt !== undefined ? { expiresAt: iso(r.expiresAt) } : {}),
    ...(r.rotatedAt !== undefined ? { rotatedAt: iso(r.rotatedAt) } : {}),
    ...(r.revokedAt !== undefined ? { revokedAt: iso(r.revokedAt) } : {}),
    ...(r.rotatedTo !== undefined ? { rotatedTo: r.rotatedTo } : {}),
    ...(r.rotatedFrom !== undefined ? { rotatedFrom: r.rotatedFrom } : {}),
    groups: [...r.groups],
    trust: r.trust,
    ...(r.limits !== undefined ? { limits: { ...r.limits } } : {}),
  };
}

function decodePublicKey(input: z.infer<typeof publicKeyInput>): Uint8Array {
  try {
    const pk = typeof input === "string" ? fromBase64Url(input) : publicKeyFromJwk(input);
    if (pk.length !== 32) throw new Error("an Ed25519 public key is 32 bytes");
    return pk;
  } catch (e) {
    throw new Problem(400, "validation", "Invalid public key", (e as Error).message, [
      { path: "publicKey", message: (e as Error).message },
    ]);
  }
}

function registryProblem(e: unknown): never {
  if (e instanceof KeyRegistryError) {
    if (e.code === "not_found") throw new Problem(404, "not-found", "Not found", e.message);
    if (e.code === "exists" || e.code === "conflict")
      throw new Problem(409, "conflict", "Conflict", e.message);
    throw new Problem(400, "validation", "Key operation refused", e.message);
  }
  throw e;
}

const createKeyRoute = createRoute({
  method: "post",
  path: "/v1/keys",
  tags: ["keys"],
  summary: "Register a client's Ed25519 public key with a role",
  middleware: [requireRole("admin")] as const,
  request: {
    body: {
      required: true,
      ...json(
        z.strictObject({
          role: z.enum(["admin", "agent", "worker", "auditor", "gateway"]),
          subject: z
            .string()
            .min(1)
            .max(200)
            .refine(
              (s) => !s.startsWith(HELD_SUBJECT_PREFIX),
              `the ${HELD_SUBJECT_PREFIX} prefix is reserved for service-held keys`,
            ),
          publicKey: publicKeyInput,
          groups: keyGroupsSchema
            .optional()
            .describe(
              `admin-set groups (approver groups; policies read them as agent.groups): at most ${KEY_GROUP_LIMITS.count}, each 1-${KEY_GROUP_LIMITS.length} of A-Z a-z 0-9 _ . -, distinct. Default none`,
            ),
          trust: keyTrustSchema
            .optional()
            .describe(
              "admin-set code trust level in [0, 1]: a job's risk codeTrustLevel and the policy attribute agent.trust. Default 0 (untrusted: its jobs run on gVisor)",
            ),
          // Quotas for this key, overriding its role's (docs/governance.md "Quotas").
          limits: keyLimitsSchema.optional(),
        }),
      ),
    },
  },
  responses: {
    201: { description: "registered", ...json(keyView) },
    ...problemResponses(400, 401, 403, 409),
  },
});
const rotateRoute = createRoute({
  method: "post",
  path: "/v1/keys/{kid}/rotate",
  tags: ["keys"],
  summary: "Replace a key; the old one verifies old signatures but no new requests",
  middleware: [requireRole("admin")] as const,
  request: {
    params: kidParam,
    body: { required: true, ...json(z.strictObject({ publicKey: publicKeyInput })) },
  },
  responses: {
    201: { description: "the new key", ...json(keyView) },
    ...problemResponses(400, 401, 403, 404, 409),
  },
});
const revokeRoute = createRoute({
  method: "delete",
  path: "/v1/keys/{kid}",
  tags: ["keys"],
  summary: "Revoke a key: requests signed with it fail from now on",
  middleware: [requireRole("admin")] as const,
  request: { params: kidParam },
  responses: {
    200: { description: "revoked", ...json(keyView) },
    ...problemResponses(400, 401, 403, 404),
  },
});
const getKeyRoute = createRoute({
  method: "get",
  path: "/v1/keys/{kid}",
  tags: ["keys"],
  summary: "A key's record",
  middleware: [requireRole("admin", "auditor")] as const,
  request: { params: kidParam },
  responses: { 200: { description: "key", ...json(keyView) }, ...problemResponses(401, 403, 404) },
});
const listKeysRoute = createRoute({
  method: "get",
  path: "/v1/keys",
  tags: ["keys"],
  summary: "Key records, by kid, a page at a time; filtered by role, subject and status",
  middleware: [requireRole("admin", "auditor")] as const,
  request: {
    query: z.object({
      role: z.enum(KEY_ROLES).optional(),
      subject: z.string().min(1).max(200).optional(),
      status: z.enum(KEY_STATUSES).optional(),
      /** The last kid of the previous page. */
      after: z.string().min(1).max(128).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
    }),
  },
  responses: {
    200: {
      description: "keys, ordered by kid; `next` is the cursor of the following page, or null",
      ...json(z.object({ keys: z.array(keyView), next: z.string().nullable() })),
    },
    ...problemResponses(400, 401, 403),
  },
});
const verifyRoute = createRoute({
  method: "post",
  path: "/v1/signatures/verify",
  tags: ["signatures"],
  summary: "Verify an Ed25519 signature by public key or registered kid",
  description: `A signature made by POST /v1/sign is checked as such: for a service-held key (by kid, or by its public key when registered) the signed bytes are "${JSON.stringify(HELD_SIGNATURE_CONTEXT).slice(1, -1)}" followed by message, as /v1/sign signed them. Pass the original message.`,
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: {
    body: {
      required: true,
      ...json(
        z
          .strictObject({
            publicKey: publicKeyInput.optional(),
            kid: z.string().min(1).max(128).optional(),
            message: b64url(1_400_000),
            signature: b64url(100),
            algorithm: z.literal("ed25519").optional(),
          })
          .refine((b) => (b.publicKey === undefined) !== (b.kid === undefined), {
            message: "give exactly one of publicKey or kid",
            path: ["publicKey"],
          }),
      ),
    },
  },
  responses: {
    200: {
      description: "result (an invalid signature is still 200)",
      ...json(
        z.object({
          valid: z.boolean(),
          kid: z.string().optional(),
          keyStatus: z.string().optional(),
        }),
      ),
    },
    ...problemResponses(400, 401, 403),
  },
});
const signRoute = createRoute({
  method: "post",
  path: "/v1/sign",
  tags: ["signatures"],
  summary: "Sign with the calling agent's service-held key (created on first use)",
  description: `Domain-separated: the signature is over the UTF-8 context prefix "${JSON.stringify(HELD_SIGNATURE_CONTEXT).slice(1, -1)}" followed by the message bytes, never the message alone, so it can never serve as a request signature, envelope or any other Sigil signature. POST /v1/signatures/verify with the returned kid checks it (give the original message). The held key (role held) cannot authenticate requests, and it is revoked when its agent has no usable key left.`,
  middleware: [requireRole("agent")] as const,
  request: { body: { required: true, ...json(z.strictObject({ message: b64url(1_400_000) })) } },
  responses: {
    200: {
      description: "signature",
      ...json(z.object({ signature: z.string(), kid: z.string() })),
    },
    ...problemResponses(400, 401, 403),
  },
});

export interface KeyRouteDeps {
  registry: KeyRegistry;
  manager: KeyManager;
  audit: AuditFn;
  now: () => number;
}

export function keyRoutes({ registry, manager, audit, now }: KeyRouteDeps) {
  const who = (s: string | undefined) => s ?? "admin";
  /** Held keys revoked with their owner: each one audited like any revocation. */
  const auditHeld = async (changes: KeyChange[], agentId: string, owner: string) => {
    for (const change of changes) {
      await audit({
        eventType: "key.revoked",
        agentId,
        details: { ...change.event, heldByService: true, ownerKid: owner },
      });
    }
  };
  return router()
    .openapi(createKeyRoute, async (c) => {
      const { role, subject, publicKey, groups, trust, limits } = c.req.valid("json");
      const change = await manager
        .registerExternalKey({
          role,
          subject,
          publicKey: decodePublicKey(publicKey),
          ...(groups !== undefined ? { groups } : {}),
          ...(trust !== undefined ? { trust } : {}),
          ...(limits ? { limits } : {}),
        })
        .catch(registryProblem);
      await audit({
        eventType: "key.created",
        agentId: who(c.get("subject")),
        details: { ...change.event },
      });
      return c.json(viewKey(change.record), 201);
    })
    .openapi(rotateRoute, async (c) => {
      const { kid } = c.req.valid("param");
      const pk = decodePublicKey(c.req.valid("json").publicKey);
      const record = await registry.rotate(kid, pk, now()).catch(registryProblem);
      await audit({
        eventType: "key.rotated",
        agentId: who(c.get("subject")),
        details: { ...keyAuditEvent("key.rotated", record) },
      });
      return c.json(viewKey(record), 201);
    })
    .openapi(revokeRoute, async (c) => {
      const { kid } = c.req.valid("param");
      const record = await registry
        .revoke(kid, now(), { reason: `revoked by ${who(c.get("subject"))}` })
        .catch(registryProblem);
      await audit({
        eventType: "key.revoked",
        agentId: who(c.get("subject")),
        details: { ...keyAuditEvent("key.revoked", record) },
      });
      // The agent's service-held key goes with its last usable key (GOVERNANCE: never a
      // credential that outlives its owner).
      if (record.role === "agent" && !isHeldKey(record)) {
        const held = await manager
          .revokeOrphanedHeldKeys(record.subject, `owner key ${record.kid} revoked`)
          .catch(registryProblem);
        await auditHeld(held, who(c.get("subject")), record.kid);
      }
      return c.json(viewKey(record), 200);
    })
    .openapi(listKeysRoute, async (c) => {
      const q = c.req.valid("query");
      const all = (await registry.list(q.role))
        .filter(
          (r) =>
            (q.subject === undefined || r.subject === q.subject) &&
            (q.status === undefined || r.status === q.status) &&
            (q.after === undefined || r.kid > q.after),
        )
        .sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
      const page = all.slice(0, q.limit);
      const next = all.length > q.limit ? (page[page.length - 1]?.kid ?? null) : null;
      return c.json({ keys: page.map(viewKey), next }, 200);
    })
    .openapi(getKeyRoute, async (c) => {
      const r = await registry.get(c.req.valid("param").kid);
      if (!r) throw notFound(`key ${c.req.valid("param").kid}`);
      return c.json(viewKey(r), 200);
    })
    .openapi(verifyRoute, async (c) => {
      const b = c.req.valid("json");
      const decode = (field: "message" | "signature") => {
        try {
          return fromBase64Url(b[field]);
        } catch (e) {
          const message = (e as Error).message;
          throw new Problem(400, "validation", "Invalid encoding", message, [
            { path: field, message },
          ]);
        }
      };
      const message = decode("message");
      const signature = decode("signature");
      let result: { valid: boolean; kid?: string; keyStatus?: string };
      // A held key only ever signed context || message (/v1/sign): verify exactly that.
      const signedBytes = (r: KeyRecord | undefined) =>
        r && isHeldKey(r) ? heldSignatureInput(message) : message;
      if (b.kid !== undefined) {
        const r = await registry.get(b.kid);
        if (!r) {
          result = { valid: false, kid: b.kid, keyStatus: "unknown" };
        } else {
          const ok = await verifyEd25519(r.publicKey, signedBytes(r), signature);
          // A revoked key proves nothing any more: its holder may not be who signed.
          result = { valid: ok && r.status !== "revoked", kid: r.kid, keyStatus: r.status };
        }
      } else {
        const publicKey = decodePublicKey(b.publicKey!);
        const r = await registry.get(ed25519Kid(publicKey));
        const ok = await verifyEd25519(publicKey, signedBytes(r), signature);
        // A registered key is judged as by kid: naming it by its public key must not get round a
        // revocation. An unregistered key is only checked mathematically.
        result = r
          ? { valid: ok && r.status !== "revoked", kid: r.kid, keyStatus: r.status }
          : { valid: ok };
      }
      await audit({
        eventType: "signature.verified",
        agentId: c.get("subject") ?? "unknown",
        details: { ...result, messageBytes: message.length },
      });
      return c.json(result, 200);
    })
    .openapi(signRoute, async (c) => {
      const ownerKid = c.get("keyid") ?? "";
      const owner = c.get("subject") ?? "unknown";
      const subject = heldSubject(owner);
      // The owner's key as the registry has it now, not as authentication found it: a revocation
      // that landed since must stop this signature.
      const ownerActive = async () => {
        const r = await registry.get(ownerKid);
        return r !== undefined && usableForNewRequest(r, now());
      };
      const refuse = () =>
        new Problem(403, "forbidden", "Forbidden", `key ${ownerKid} is no longer active`);
      if (!(await ownerActive())) throw refuse();
      let record = await manager.currentKey("held", subject);
      if (!record) {
        const change = await manager.createKey({ role: "held", subject });
        record = change.record;
        await audit({
          eventType: "key.created",
          agentId: subject,
          details: { ...change.event, heldByService: true, ownerKid },
        });
        // A revocation of the owner that raced the creation must not leave a live held key.
        if (!(await ownerActive())) {
          const held = await manager
            .revokeOrphanedHeldKeys(owner, `owner key ${ownerKid} revoked`)
            .catch(registryProblem);
          await auditHeld(held, subject, ownerKid);
          throw refuse();
        }
      }
      const message = fromBase64Url(c.req.valid("json").message);
      // Revoked since we looked (the owner's revocation took it along): refuse, not a 500.
      const signer = await manager.signer(record.kid).catch((e: unknown) => {
        throw e instanceof CryptoError && e.code === "invalid_key" ? refuse() : e;
      });
      const signature = toBase64Url(await signer.sign(heldSignatureInput(message)));
      await audit({
        eventType: "signature.created",
        agentId: subject,
        details: { kid: record.kid, messageBytes: message.length },
      });
      return c.json({ signature, kid: record.kid }, 200);
    });
}

/** GET /.well-known/sigil/keys: service and worker public keys, with status and validity window. */
export function wellKnownRoutes(registry: KeyRegistry) {
  const route = createRoute({
    method: "get",
    path: "/.well-known/sigil/keys",
    tags: ["keys"],
    summary: "The service's public keys as a JWK Set (RFC 8037), unauthenticated",
    responses: {
      200: {
        description: "JWK Set",
        ...json(z.object({ keys: z.array(z.record(z.string(), z.unknown())) })),
      },
    },
  });
  return router().openapi(route, async (c) => {
    // Service and gateway keys sign envelopes and checkpoints; worker keys sign job results.
    const records = [
      ...(await registry.list("service")),
      ...(await registry.list("gateway")),
      ...(await registry.list("worker")),
    ];
    const keys = records.map((r) => ({
      ...publicJwk(r.publicKey, { kid: r.kid }),
      use: "sig",
      alg: "EdDSA",
      role: r.role,
      subject: r.subject,
      status: r.status,
      nbf: Math.floor(r.notBefore / 1000),
      ...(r.expiresAt !== undefined ? { exp: Math.floor(r.expiresAt / 1000) } : {}),
      ...(r.revokedAt !== undefined ? { revoked_at: Math.floor(r.revokedAt / 1000) } : {}),
    }));
    c.header("cache-control", "public, max-age=60");
    return c.json({ keys }, 200);
  });
}
