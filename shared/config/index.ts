export { ConfigError, type ConfigIssue, type ConfigSources, envNames, loadConfig } from "./load";
export { type ConfigInput, configSchema, type SigilConfig } from "./schema";
