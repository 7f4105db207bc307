// sigil keys create|get|rotate|revoke (docs/cli.md). `create` and `rotate` either take a public
// key, or generate a key pair and write its key file (mode 0600, never overwritten).
import { writeFile } from "node:fs/promises";
import { defineCommand } from "citty";
import type { Role } from "../../sdk";
import { ed25519Kid, generateEd25519KeyPair, publicJwk } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, table } from "../output";

const ROLES = ["admin", "agent", "worker", "auditor", "gateway"] as const;

/** The public key to register: the one given, or a new pair whose key file is written to `out`. */
async function publicKeyFor(args: { "public-key"?: string; out?: string }): Promise<{
  publicKey: string;
  keyFile?: string;
}> {
  if (args["public-key"] && args.out)
    throw new Failure(EXIT.usage, "give --public-key or --out, not both");
  if (args["public-key"]) return { publicKey: args["public-key"] };
  if (!args.out)
    throw new Failure(EXIT.usage, "give --public-key KEY, or --out FILE to generate one");
  const kp = await generateEd25519KeyPair();
  const kid = ed25519Kid(kp.publicKey);
  const file = {
    kid,
    secretKey: toBase64Url(kp.secretKey),
    publicJwk: publicJwk(kp.publicKey, { kid }),
  };
  try {
    await writeFile(args.out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (e) {
    throw new Failure(EXIT.failed, `cannot write ${args.out}: ${(e as Error).message}`);
  }
  return { publicKey: toBase64Url(kp.publicKey), keyFile: args.out };
}

const keyArgs = {
  "public-key": {
    type: "string",
    description: "Ed25519 public key (base64url, or a JWK as JSON)",
    valueHint: "key",
  },
  out: {
    type: "string",
    description: "generate a key pair and write its key file here",
    valueHint: "file",
  },
} as const;

function parsePublicKey(s: string): string | Record<string, unknown> {
  return s.trimStart().startsWith("{") ? (JSON.parse(s) as Record<string, unknown>) : s;
}

const create = defineCommand({
  meta: { name: "create", description: "Register a key (admin)" },
  args: {
    ...targetArgs,
    role: { type: "string", required: true, description: `the key's role: ${ROLES.join(", ")}` },
    subject: { type: "string", required: true, description: "who the key belongs to" },
    groups: {
      type: "string",
      description: "comma-separated groups (approver groups, agent.groups)",
    },
    trust: { type: "string", description: "code trust level in [0, 1] (default 0)" },
    ...keyArgs,
  },
  async run({ args }) {
    const io = defaultIo();
    // Checked here: citty does not enforce a required enum.
    if (!(ROLES as readonly string[]).includes(args.role))
      throw new Failure(EXIT.usage, `--role must be one of ${ROLES.join(", ")}`);
    const sigil = await client(args);
    const key = await publicKeyFor(args);
    const trust = args.trust === undefined ? undefined : Number(args.trust);
    if (trust !== undefined && !Number.isFinite(trust))
      throw new Failure(EXIT.usage, "--trust must be a number in [0, 1]");
    const res = await sigil.keys.create({
      role: args.role as Role,
      subject: args.subject,
      publicKey: parsePublicKey(key.publicKey) as string,
      ...(args.groups ? { groups: args.groups.split(",").map((g) => g.trim()) } : {}),
      ...(trust !== undefined ? { trust } : {}),
    });
    emit(io, args.json, { ...res, ...(key.keyFile ? { keyFile: key.keyFile } : {}) }, () => [
      `registered ${res.kid}`,
      ...(key.keyFile ? [`key file: ${key.keyFile}`] : []),
    ]);
  },
});

const get = defineCommand({
  meta: { name: "get", description: "Show a key record (admin, auditor)" },
  args: { ...targetArgs, kid: { type: "positional", required: true, description: "key id" } },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).keys.get(args.kid);
    emit(io, args.json, r, () => fields(r as Record<string, unknown>));
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List key records (admin, auditor), every page" },
  args: {
    ...targetArgs,
    role: { type: "string", description: "only this role" },
    subject: { type: "string", description: "only this subject" },
    status: { type: "string", description: "only this status: active, rotated, revoked" },
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const keys: Record<string, unknown>[] = [];
    let after: string | undefined;
    do {
      const page = await sigil.keys.list({
        ...(args.role ? { role: args.role as Role } : {}),
        ...(args.subject ? { subject: args.subject } : {}),
        ...(args.status ? { status: args.status } : {}),
        ...(after ? { after } : {}),
        limit: 1000,
      });
      keys.push(...(page.keys as unknown as Record<string, unknown>[]));
      after = page.next ?? undefined;
    } while (after);
    emit(io, args.json, { keys }, () =>
      table(
        ["kid", "role", "subject", "status", "groups", "trust"],
        keys.map((k) => [
          k.kid,
          k.role,
          k.subject,
          k.status,
          (k.groups as string[] | undefined)?.join(","),
          k.trust,
        ]),
      ),
    );
  },
});

const rotate = defineCommand({
  meta: { name: "rotate", description: "Rotate a key to a new public key (admin)" },
  args: {
    ...targetArgs,
    kid: { type: "positional", required: true, description: "key id" },
    ...keyArgs,
  },
  async run({ args }) {
    const io = defaultIo();
    const sigil = await client(args);
    const key = await publicKeyFor(args);
    const res = await sigil.keys.rotate(args.kid, {
      publicKey: parsePublicKey(key.publicKey) as string,
    });
    emit(
      io,
      args.json,
      { ...res, rotatedFrom: args.kid, ...(key.keyFile ? { keyFile: key.keyFile } : {}) },
      () => [
        `rotated ${args.kid} → ${res.kid}`,
        ...(key.keyFile ? [`key file: ${key.keyFile}`] : []),
      ],
    );
  },
});

const revoke = defineCommand({
  meta: { name: "revoke", description: "Revoke a key (admin)" },
  args: { ...targetArgs, kid: { type: "positional", required: true, description: "key id" } },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).keys.revoke(args.kid);
    emit(io, args.json, r, () => `revoked ${args.kid}`);
  },
});

export const keys = defineCommand({
  meta: { name: "keys", description: "Register, inspect, rotate and revoke keys" },
  subCommands: { create, get, list, rotate, revoke },
});
