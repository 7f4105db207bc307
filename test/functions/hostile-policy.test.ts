// Hostile evaluation requests over HTTP (issue 15, items 7 and 8), on the Node app and the edge
// app alike: a kind mismatch fails closed instead of escaping a deny rule, and budget bombs
// (alone and in a batch) are denied with an evaluation error instead of stalling the server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { registeredKey, startTarget, type Target, targetNames } from "../support/targets";

const GUARD = `policy guard {
  allow: enter(door)
  deny: enter(door) if role == "guest"
  allow: open(vault) if level == 3
}`;

const A16 = Array.from({ length: 16 }, () => "a").join(" + ");
const BOMB = `policy bomb {
  allow: go
  deny: go if any(xs, |i| len(${A16}) < 0)
}`;
const GRANT = "policy grant { allow: use if all(requested, |s| granted.contains(s)) }";

const enter = (role: unknown) => ({
  action: "enter",
  resource: "door",
  context: { role },
});
// One evaluation's work is bounded; which limit ends it first (work, or on Node the clock
// backstop when the code is still cold) does not matter: both are fail-closed errors.
const OVER = /evaluation (budget|time limit) exceeded/;

describe.each(targetNames)("hostile policy evaluation on %s", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let agent: Sigil;

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    agent = t.client(await registeredKey(admin, "agent", "agent-hostile"));
    await admin.policies.put("guard", GUARD);
    await admin.policies.put("bomb", BOMB);
    await admin.policies.put("grant", GRANT);
  }, 120_000);
  afterAll(async () => t?.stop());

  it('a kind mismatch fails closed: ["guest"] does not escape the deny, "3" does not open', async () => {
    expect((await agent.evaluate(enter("admin"))).decision).toBe("allow");
    expect((await agent.evaluate(enter("guest"))).reason).toBe(
      "denied by guard: deny: enter(door)",
    );
    for (const role of [["guest"], null, 1, { role: "guest" }]) {
      const d = await agent.evaluate(enter(role));
      expect(d.decision).toBe("deny");
      // The reason carries the error: "<policy>: <rule>: <expression>: <what went wrong>".
      expect(d.reason).toMatch(
        /^evaluation error \(fail closed\): guard: deny: enter\(door\): role == "guest": cannot compare \w+ with string using '=='$/,
      );
    }
    const vault = (level: unknown) => ({
      action: "open",
      resource: "vault",
      context: { level },
    });
    expect((await agent.evaluate(vault(3))).decision).toBe("allow");
    const d = await agent.evaluate(vault("3"));
    expect(d.decision).toBe("deny");
    expect(d.matched).toEqual([
      { document: "guard", policy: "guard", rule: "allow: open(vault)", effect: "error" },
    ]);
  });

  it("budget bombs are denied with an evaluation error, alone and in a batch", async () => {
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    const stringBomb = { action: "go", context: { a: "x".repeat(16_384), xs: range(9000) } };
    const one = await agent.evaluate(stringBomb);
    expect(one.decision).toBe("deny");
    expect(one.reason).toMatch(OVER);

    const containsBomb = {
      action: "use",
      context: {
        granted: range(4000).map((i) => `g${i}`),
        requested: Array.from({ length: 4000 }, () => "g3999"),
      },
    };
    const fine = { action: "use", context: { granted: ["a", "b"], requested: ["b"] } };
    const results = await agent.evaluateBatch([containsBomb, fine, stringBomb, containsBomb]);
    expect(results.map((r) => r.decision)).toEqual(["deny", "allow", "deny", "deny"]);
    for (const i of [0, 2, 3]) expect(results[i]!.reason).toMatch(OVER);
    // The server is still answering.
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });
});
