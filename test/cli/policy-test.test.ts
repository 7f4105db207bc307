// The CLI's offline pieces (docs/cli.md "Policy tests"): compile errors located as file:line:col,
// cases evaluated with the identity the server would set, the cases file validated, the diff.
import { describe, expect, it } from "vitest";
import { lineDiff } from "../../cli/commands/policy";
import { checkPolicy, parseCases, runCases } from "../../cli/policy-test";
import { SECURITY_MODEL_POLICIES } from "../policy/fixtures";

describe("checkPolicy", () => {
  it("compiles the security model; names the file, line and column of an error", () => {
    expect(checkPolicy("model.policy", SECURITY_MODEL_POLICIES).errors).toEqual([]);
    const { set, errors } = checkPolicy("bad.policy", "policy p {\n  allow: read(x) if (\n}\n");
    expect(set).toBeUndefined();
    expect(errors[0]).toMatchObject({ file: "bad.policy", line: 3, column: expect.any(Number) });
  });
});

describe("runCases", () => {
  const set = checkPolicy(
    "p.policy",
    'policy p {\n  allow: read(docs) if agent.groups.contains("staff")\n}\n',
  ).set!;
  const base = { name: "staff reads", request: { action: "read", resource: "docs", context: {} } };

  it("evaluates with agent.* from the case, never from the context", () => {
    const [staff, outsider] = runCases(set, [
      {
        ...base,
        agent: { kid: "k", subject: "s", role: "agent", groups: ["staff"], trust: 0 },
        expect: { decision: "allow" },
      },
      { ...base, name: "no groups", expect: { decision: "allow" } },
    ]);
    expect(staff!.pass).toBe(true);
    expect(outsider).toMatchObject({ pass: false, got: { decision: "deny" } });
  });

  it("refuses a case whose context sets agent or request itself", () => {
    expect(() =>
      runCases(set, [
        {
          ...base,
          request: { ...base.request, context: { agent: { groups: ["staff"] } } },
          expect: { decision: "allow" },
        },
      ]),
    ).toThrow(/set by the server/);
  });
});

describe("parseCases", () => {
  it("reads YAML and JSON; names the path of a bad field", () => {
    expect(
      parseCases(
        "c.json",
        JSON.stringify({
          cases: [
            { name: "n", request: { action: "a", context: {} }, expect: { decision: "deny" } },
          ],
        }),
      ).cases,
    ).toHaveLength(1);
    expect(() =>
      parseCases(
        "c.yaml",
        "cases:\n  - name: n\n    request: { action: a, context: {} }\n    expect: { decision: maybe }\n",
      ),
    ).toThrow(/c\.yaml: cases\.0\.expect\.decision/);
    expect(() => parseCases("c.yaml", "cases: [")).toThrow(/^c\.yaml: /);
    expect(() => parseCases("c.yaml", "cases: []")).toThrow(/cases/);
  });
});

describe("lineDiff", () => {
  it("keeps common lines and marks the rest", () => {
    expect(lineDiff("a\nb\nc", "a\nx\nc")).toEqual(["  a", "- b", "+ x", "  c"]);
    expect(lineDiff("", "a")).toEqual(["- ", "+ a"]);
  });
});
