export { allowedAuthorities } from "./authorities";
export { ConfigError, type ConfigIssue, type ConfigSources, envNames, loadConfig } from "./load";
export { type ConfigInput, configSchema, DEFAULT_API_URL, type SigilConfig } from "./schema";
