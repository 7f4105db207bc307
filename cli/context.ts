// Target and identity of a command (docs/cli.md "Target and identity"): a flag beats the
// environment, which beats a named profile, which beats the defaults (the local API and the local
// admin key in the data directory).
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { Sigil } from "../sdk";
import { dataDir, loadDevAdminKey, loadKeyFile } from "../sdk/node";
import { DEFAULT_API_URL } from "../shared/config";
import { EXIT, Failure } from "./output";

/** Flags every command that talks to the API accepts. */
export const targetArgs = {
  url: { type: "string", description: "API base URL (env SIGIL_URL)", valueHint: "url" },
  key: {
    type: "string",
    description:
      "key file {kid, secretKey, publicJwk} (env SIGIL_KEY_FILE; default: the local admin key)",
    valueHint: "file",
  },
  profile: {
    type: "string",
    description: "named profile of the CLI config file (env SIGIL_PROFILE)",
    valueHint: "name",
  },
  json: { type: "boolean", description: "print data as JSON", default: false },
} as const;

export interface TargetFlags {
  url?: string | undefined;
  key?: string | undefined;
  profile?: string | undefined;
}

const ProfilesFile = z.strictObject({
  profiles: z
    .record(
      z.string(),
      z.strictObject({ url: z.string().url().optional(), key: z.string().optional() }),
    )
    .default({}),
});

/** SIGIL_CLI_CONFIG, else ~/.config/sigil/cli.toml. */
export function profilesPath(env = process.env): string {
  return (
    env.SIGIL_CLI_CONFIG ??
    join(env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "sigil", "cli.toml")
  );
}

async function profile(
  name: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ url?: string | undefined; key?: string | undefined }> {
  const path = profilesPath(env);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (name !== undefined)
      throw new Failure(
        EXIT.usage,
        `profile ${name}: cannot read ${path} (${(e as Error).message})`,
      );
    return {};
  }
  let parsed: z.infer<typeof ProfilesFile>;
  try {
    parsed = ProfilesFile.parse(parseToml(text));
  } catch (e) {
    throw new Failure(EXIT.usage, `${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  const chosen = name ?? "default";
  const p = parsed.profiles[chosen];
  if (!p && name !== undefined) throw new Failure(EXIT.usage, `no profile ${name} in ${path}`);
  return p ?? {};
}

export async function resolveTarget(
  flags: TargetFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; keyFile: string | undefined }> {
  // An empty variable counts as unset, as shells and CI systems often leave them.
  const set = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);
  const p = await profile(set(flags.profile) ?? set(env.SIGIL_PROFILE), env);
  return {
    url: (set(flags.url) ?? set(env.SIGIL_URL) ?? p.url ?? DEFAULT_API_URL).replace(/\/+$/, ""),
    keyFile: set(flags.key) ?? set(env.SIGIL_KEY_FILE) ?? p.key,
  };
}

/** A signed client for the resolved target and key. */
export async function client(flags: TargetFlags): Promise<Sigil> {
  const { url, keyFile } = await resolveTarget(flags);
  try {
    const key = keyFile ? await loadKeyFile(keyFile) : await loadDevAdminKey(dataDir());
    return new Sigil({ baseUrl: url, keyId: key.kid, secretKey: key.secretKey });
  } catch (e) {
    throw new Failure(EXIT.usage, (e as Error).message);
  }
}

/** An unsigned client (public routes only). */
export async function publicClient(flags: TargetFlags): Promise<Sigil> {
  const { url } = await resolveTarget(flags);
  return new Sigil({ baseUrl: url });
}
