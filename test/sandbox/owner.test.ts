// The owner label that lets any worker on the host remove a dead worker's containers and never a
// live one's (issue 15, item 15): pid + process start time, on the same boot and pid namespace.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { formatOwner, liveness, parseOwner, selfOwner } from "../../worker/sandbox";

describe("container owner", () => {
  const self = selfOwner()!;

  it("names this process, and round-trips through the label", () => {
    expect(self).toMatchObject({ pid: process.pid });
    expect(parseOwner(formatOwner(self))).toEqual(self);
    for (const junk of [undefined, "", "x/y/1/2", `${self.boot}/${self.pidns}/-1/2`])
      expect(parseOwner(junk)).toBeUndefined();
  });

  it("a live process is alive; an exited one, or its pid with another start time, is dead", () => {
    expect(liveness(self, self)).toBe("alive");
    const child = spawnSync("true");
    expect(liveness({ ...self, pid: child.pid! }, self)).toBe("dead");
    expect(liveness({ ...self, start: String(Number(self.start) + 1) }, self)).toBe("dead");
  });

  it("cannot judge an owner on another boot or in another pid namespace", () => {
    expect(liveness({ ...self, boot: "00000000-0000-0000-0000-000000000000" }, self)).toBe(
      "unknown",
    );
    expect(liveness({ ...self, pidns: "pid:[1]" }, self)).toBe("unknown");
  });
});
