// Custom compliance frameworks on Node (docs/compliance.md "Custom frameworks"): the files
// `[compliance] framework_files` names (JSON, or TOML by extension) plus `frameworks_json`, each
// validated with an error naming the file and the control; then the retention floor of
// `[compliance] enforce` is checked against `audit_retention_days`. Any problem stops start-up.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  complianceSetup,
  type Framework,
  FrameworkError,
  parseFramework,
  parseFrameworksJson,
} from "../../shared/compliance";
import type { SigilConfig } from "../../shared/config";

/** A framework file is a few kilobytes; a huge one is a mistake, not a framework. */
const MAX_FILE_BYTES = 1_000_000;

export async function loadComplianceFrameworks(
  config: Pick<SigilConfig, "security" | "compliance">,
): Promise<ReturnType<typeof complianceSetup>> {
  const custom: Framework[] = [];
  for (const path of config.compliance.framework_files) {
    let text: string;
    try {
      text = await readFile(resolve(path), "utf8");
    } catch (e) {
      throw new FrameworkError(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    if (text.length > MAX_FILE_BYTES)
      throw new FrameworkError(`${path}: larger than ${MAX_FILE_BYTES} bytes`);
    custom.push(parseFramework(text, path));
  }
  custom.push(
    ...parseFrameworksJson(config.compliance.frameworks_json, "[compliance] frameworks_json"),
  );
  return complianceSetup(
    { retentionDays: config.security.audit_retention_days, enforce: config.compliance.enforce },
    custom,
  );
}
