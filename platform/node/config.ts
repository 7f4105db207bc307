// Reads the TOML file named by SIGIL_CONFIG (if any) and the environment; exits with a clear
// message on a bad setting rather than starting half-configured.
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig, type SigilConfig } from "../../shared/config";

export function loadNodeConfig(env: NodeJS.ProcessEnv = process.env): SigilConfig {
  const path = env.SIGIL_CONFIG;
  let toml: { path: string; text: string } | undefined;
  if (path) {
    try {
      toml = { path, text: readFileSync(path, "utf8") };
    } catch (e) {
      throw new ConfigError([
        {
          path: "(file)",
          message: `cannot read SIGIL_CONFIG: ${(e as Error).message}`,
          source: path,
        },
      ]);
    }
  }
  return loadConfig({ env, ...(toml ? { toml } : {}) });
}

export function loadNodeConfigOrExit(): SigilConfig {
  try {
    return loadNodeConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
}
