// sigil tools verify|review|pin|pins|unpin (docs/cli.md): SchemaPin verification and pins.
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { client, targetArgs } from "../context";
import { defaultIo, EXIT, emit, Failure, fields, readJsonFile } from "../output";

const verify = defineCommand({
  meta: {
    name: "verify",
    description: "Verify a tool schema's SchemaPin signature (TOFU pins apply)",
  },
  args: {
    ...targetArgs,
    schema: { type: "positional", required: true, description: "the tool's schema (JSON file)" },
    domain: { type: "string", required: true, description: "the tool provider's domain" },
    "tool-id": { type: "string", required: true, description: "the tool's id" },
    signature: { type: "string", required: true, description: "the schema's signature (base64)" },
  },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).tools.verify({
      toolId: args["tool-id"],
      domain: args.domain,
      schema: await readJsonFile(args.schema),
      signature: args.signature,
    });
    emit(io, args.json, r, () => fields(r as unknown as Record<string, unknown>));
    if (r.result !== "trusted" && r.result !== "first_use") process.exitCode = EXIT.failed;
  },
});

const review = defineCommand({
  meta: { name: "review", description: "Score a tool schema's risk" },
  args: { ...targetArgs, schema: { type: "positional", required: true, description: "JSON file" } },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).tools.review(await readJsonFile(args.schema));
    emit(io, args.json, r, () => fields(r));
  },
});

const pin = defineCommand({
  meta: { name: "pin", description: "Pin a provider's key for a domain, or one tool (admin)" },
  args: {
    ...targetArgs,
    domain: { type: "positional", required: true, description: "domain" },
    key: { type: "string", required: true, description: "public key PEM file", valueHint: "file" },
    "tool-id": { type: "string", description: "pin for this tool only" },
  },
  async run({ args }) {
    const io = defaultIo();
    const pem = await readFile(args.key, "utf8").catch((e: Error) => {
      throw new Failure(EXIT.usage, `${args.key}: ${e.message}`);
    });
    const r = await (await client(args)).tools.putPin(args.domain, {
      publicKeyPem: pem,
      ...(args["tool-id"] ? { toolId: args["tool-id"] } : {}),
    });
    emit(io, args.json, r, () => fields(r));
  },
});

const pins = defineCommand({
  meta: { name: "pins", description: "Show a domain's pin" },
  args: { ...targetArgs, domain: { type: "positional", required: true, description: "domain" } },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).tools.getPin(args.domain);
    emit(io, args.json, r, () => fields(r));
  },
});

const unpin = defineCommand({
  meta: { name: "unpin", description: "Remove a domain's pin, or one tool's (admin)" },
  args: {
    ...targetArgs,
    domain: { type: "positional", required: true, description: "domain" },
    "tool-id": { type: "string", description: "the tool's pin only" },
  },
  async run({ args }) {
    const io = defaultIo();
    const r = await (await client(args)).tools.deletePin(
      args.domain,
      args["tool-id"] ? { toolId: args["tool-id"] } : {},
    );
    emit(
      io,
      args.json,
      r,
      () => `unpinned ${args.domain}${args["tool-id"] ? ` (${args["tool-id"]})` : ""}`,
    );
  },
});

export const tools = defineCommand({
  meta: { name: "tools", description: "SchemaPin: verify tool schemas, manage pins" },
  subCommands: { verify, review, pin, pins, unpin },
});
