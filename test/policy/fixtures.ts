// The three policies of the security model, verbatim from its policy examples; the README's tour
// pushes the same file.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../shared/encoding";
import {
  buildPolicySet,
  type Decision,
  type EvaluationRequest,
  type PolicySet,
  type PolicySetOptions,
  parse,
} from "../../shared/policy";
import { repoRoot } from "../support/vectors";

export const SECURITY_MODEL_POLICIES = readFileSync(
  join(repoRoot, "examples", "security-model.policy"),
  "utf8",
);
export const SECURE_DATA_ACCESS = SECURITY_MODEL_POLICIES.slice(
  0,
  SECURITY_MODEL_POLICIES.indexOf("\n\npolicy data_flow_control"),
);

/** Builds a set from named sources (parse errors throw). */
export function setOf(sources: Record<string, string>, opts: PolicySetOptions = {}): PolicySet {
  return buildPolicySet(
    Object.entries(sources).map(([name, src]) => ({
      name,
      sha256: sha256Hex(src),
      doc: parse(src),
    })),
    opts,
  );
}

export function evalOne(
  src: string,
  req: EvaluationRequest,
  opts: PolicySetOptions = {},
): Decision {
  return setOf({ doc: src }, opts).evaluate(req);
}
