// The three policies of the security model, verbatim from POLICY-LANGUAGE.md.
export const SECURE_DATA_ACCESS = `policy secure_data_access {
    allow: read(sensitive_data) if (
        user.clearance >= "secret" &&
        user.need_to_know.contains(data.classification) &&
        session.mfa_verified == true
    )

    deny: export(data) if data.contains_pii == true

    require: [
        user.background_check.current,
        session.secure_connection,
        audit_trail = "detailed"
    ]
}`;

export const SECURITY_MODEL_POLICIES = `${SECURE_DATA_ACCESS}

policy data_flow_control {
    allow: transform(data) if (
        source.classification <= target.classification &&
        user.transform_permissions.contains(operation.type)
    )

    deny: aggregate(datasets) if (
        any(datasets, |d| d.privacy_level > operation.privacy_budget)
    )

    require: differential_privacy for statistical_operations
}

policy resource_governance {
    allow: allocate(resources) if (
        user.resource_quota.remaining >= resources.total &&
        operation.priority <= user.max_priority
    )

    deny: long_running_operations if system.maintenance_mode

    require: supervisor_approval for high_memory_operations
}
`;

import { sha256Hex } from "../../shared/encoding";
import {
  buildPolicySet,
  type Decision,
  type EvaluationRequest,
  type PolicySet,
  type PolicySetOptions,
  parse,
} from "../../shared/policy";

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
