// Pure parts of the driver: tar writer (checked by real tar binaries), sh quoting (checked by a
// real sh), spec validation, output demux/caps, and the hardening in the create options.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { utf8 } from "../../shared/encoding";
import {
  buildJobArchive,
  buildRunScript,
  createOptions,
  JobSpecSchema,
  runscHostPids,
  Sandbox,
  SandboxOptionsSchema,
  SandboxSpecError,
  shQuote,
} from "../../worker/sandbox";
import { CappedOutput } from "../../worker/sandbox/output";
import { createTar } from "../../worker/sandbox/tar";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "sigil-tar-"));
  dirs.push(d);
  return d;
};

describe("tar writer", () => {
  const longDir = `${"d".repeat(60)}/${"e".repeat(60)}`;
  const files: Record<string, string> = {
    "a.txt": "alpha\n",
    "dir/sub/b.py": "print('b')\n",
    [`${longDir}/${"f".repeat(90)}.txt`]: "long path\n",
    "ünïcode/名前.txt": "utf-8 name\n",
    empty: "",
    "block.bin": "x".repeat(512),
  };
  const archive = () =>
    createTar(Object.entries(files).map(([path, s]) => ({ path, data: utf8(s) })));

  for (const [name, argv] of [
    ["GNU tar", ["tar", "-xf"]],
    ["busybox tar", ["busybox", "tar", "-xf"]],
  ] as const) {
    it(`is read back exactly by ${name}`, () => {
      const d = tmp();
      const file = join(d, "job.tar");
      writeFileSync(file, archive());
      const out = join(d, "out");
      execFileSync("mkdir", [out]);
      execFileSync(argv[0], [...argv.slice(1), file, "-C", out]);
      for (const [path, content] of Object.entries(files)) {
        expect(readFileSync(join(out, path), "utf8")).toBe(content);
      }
    });
  }

  it("refuses a path that cannot fit a ustar header", () => {
    expect(() => createTar([{ path: "x".repeat(101), data: utf8("") }])).toThrow(RangeError);
  });
});

describe("sh quoting", () => {
  it("round-trips any argument list through a real sh", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: "binary", maxLength: 20 }).filter((s) => !s.includes("\0")),
          { maxLength: 5 },
        ),
        (args) => {
          const script = `printf '%s\\0' ${args.map(shQuote).join(" ")}`;
          const out = execFileSync("sh", ["-c", args.length ? script : "true"]).toString("utf8");
          const back = args.length ? out.split("\0").slice(0, -1) : [];
          expect(back).toEqual(args);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("builds run scripts that exec the job with its env", () => {
    const spec = JobSpecSchema.parse({
      jobId: "j1",
      image: "sigil/busybox:1",
      tier: "docker",
      command: ["echo", "it's"],
      env: { GREETING: "a'b c" },
    });
    expect(buildRunScript(spec)).toBe(
      "cd /work || exit 125\nexport GREETING='a'\\''b c'\nexec 'echo' 'it'\\''s'\n",
    );
  });
});

describe("job spec validation", () => {
  const sb = new Sandbox({ workerId: "unit" });
  const base = { jobId: "j1", image: "sigil/busybox:1", tier: "docker", command: ["true"] };
  const bad: [string, Record<string, unknown>][] = [
    ["path traversal", { files: { "../x": "" } }],
    ["absolute path", { files: { "/etc/x": "" } }],
    ["dot segment", { files: { "a/./b": "" } }],
    ["reserved .sigil", { files: { ".sigil/run": "echo pwned" } }],
    ["command and code", { code: "print(1)" }],
    ["neither command nor code", { command: undefined }],
    ["image not allowed", { image: "alpine:latest" }],
    ["bad env name", { env: { "A=B": "x" } }],
    ["NUL in env", { env: { A: "x\0y" } }],
    ["bad job id", { jobId: "../x" }],
    ["unknown tier", { tier: "vm" }],
    ["memory too small", { limits: { memoryMb: 1 } }],
    ["unknown limit", { limits: { disk: 1 } }],
    ["unknown field", { privileged: true }],
    ["language without code", { language: "python" }],
  ];
  for (const [name, patch] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => sb.parseSpec({ ...base, ...patch })).toThrow(SandboxSpecError);
    });
  }

  it("applies the documented defaults", () => {
    const s = sb.parseSpec(base);
    expect(s.timeoutMs).toBe(30_000);
    expect(s.limits).toEqual({ memoryMb: 512, cpus: 0.5, pids: 128, outputBytes: 1024 * 1024 });
    expect(sb.parseSpec({ ...base, limits: { memoryMb: 256 } }).limits.pids).toBe(128);
  });

  it("rejects a payload over the limit and a file that is also a directory", () => {
    const big = sb.parseSpec({ ...base, stdin: "x".repeat(2048) });
    expect(() => buildJobArchive(big, 1024)).toThrow(SandboxSpecError);
    // The shared spec schema refuses it before any archive is built (the API does too).
    expect(() => sb.parseSpec({ ...base, files: { a: "1", "a/b": "2" } })).toThrow(
      /directory of another file/,
    );
  });

  it("rejects invalid driver options", () => {
    expect(() => new Sandbox({ workerId: "bad id!" })).toThrow(SandboxSpecError);
    expect(() => new Sandbox({ workerId: "w", capAdd: ["ALL"] })).toThrow(SandboxSpecError);
    expect(
      () => new Sandbox({ workerId: "w", pools: [{ image: "other:1", tier: "docker", size: 1 }] }),
    ).toThrow(/allow-list/);
  });
});

/** Docker's multiplexed attach framing. */
function frame(stream: 1 | 2, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length);
  out.set(data, 8);
  return out;
}

describe("output demux and caps", () => {
  it("keeps exactly the first cap bytes of each stream, whatever the chunking", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(1 as const, 2 as const), fc.string({ maxLength: 40 }))),
        fc.integer({ min: 0, max: 120 }),
        fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 1 }),
        (frames, cap, cuts) => {
          const wire = Buffer.concat(frames.map(([s, t]) => frame(s, utf8(t))));
          const out = new CappedOutput(cap);
          let off = 0;
          for (let i = 0; off < wire.length; i++) {
            const n = cuts[i % cuts.length] ?? 1;
            out.push(wire.subarray(off, off + n));
            off += n;
          }
          const all = (s: number) =>
            Buffer.from(
              frames
                .filter(([k]) => k === s)
                .map(([, t]) => t)
                .join(""),
            );
          const [o, e] = [all(1), all(2)];
          expect(Buffer.from(out.text("stdout"))).toEqual(o.subarray(0, cap));
          expect(Buffer.from(out.text("stderr"))).toEqual(e.subarray(0, cap));
          expect(out.truncated).toBe(o.length > cap || e.length > cap);
          expect(out.totals).toEqual({ stdout: o.length, stderr: e.length });
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("exit trailer", () => {
  const M = "SIGIL-EXIT-0123456789abcdef0123456789abcdef:";
  const feed = (out: CappedOutput, wire: Buffer, cuts: number[]) => {
    let off = 0;
    for (let i = 0; off < wire.length; i++) {
      const n = cuts[i % cuts.length] ?? 1;
      out.push(wire.subarray(off, off + n));
      off += n;
    }
  };

  it("is found on both streams whatever the chunking, and is never part of the output", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 60 }),
        fc.string({ maxLength: 60 }),
        fc.integer({ min: 0, max: 128 }),
        fc.array(fc.integer({ min: 1, max: 13 }), { minLength: 1 }),
        (o, e, status, cuts) => {
          const wire = Buffer.concat([
            frame(1, utf8(o)),
            frame(2, utf8(e)),
            frame(1, utf8(`${M}${status}\n`)),
            frame(2, utf8(`${M}${status}\n`)),
            // A background process the job left behind: after the trailer, not the job's output.
            frame(1, utf8("late")),
            frame(2, utf8("late")),
          ]);
          const out = new CappedOutput(1000, M);
          const seen: number[] = [];
          out.onTrailer((s) => seen.push(s));
          feed(out, wire, cuts);
          out.finish();
          expect(seen).toEqual([status]);
          expect(out.text("stdout")).toBe(o);
          expect(out.text("stderr")).toBe(e);
          expect(out.truncated).toBe(false);
          expect(out.totals).toEqual({
            stdout: Buffer.byteLength(o),
            stderr: Buffer.byteLength(e),
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("needs both streams, and the same status on both", () => {
    const one = new CappedOutput(100, M);
    let fired = 0;
    one.onTrailer(() => fired++);
    one.push(frame(1, utf8(`x${M}0\n`)));
    expect(fired).toBe(0); // stderr may still have bytes in flight
    one.push(frame(2, utf8(`${M}0\n`)));
    expect(fired).toBe(1);
    const mismatch = new CappedOutput(100, M);
    mismatch.onTrailer(() => fired++);
    mismatch.push(Buffer.concat([frame(1, utf8(`${M}0\n`)), frame(2, utf8(`${M}1\n`))]));
    expect(fired).toBe(1);
  });

  it("a marker with another nonce, or without a status line, is plain output", () => {
    const out = new CappedOutput(1000, M);
    let fired = 0;
    out.onTrailer(() => fired++);
    const forged = "SIGIL-EXIT-ffffffffffffffffffffffffffffffff:0\n";
    const garbage = `${M}zero\n${M}12345\n`;
    out.push(Buffer.concat([frame(1, utf8(forged + garbage)), frame(2, utf8(forged))]));
    out.finish();
    expect(fired).toBe(0);
    expect(out.text("stdout")).toBe(forged + garbage);
    expect(out.text("stderr")).toBe(forged);
  });

  it("output past the cap is still drained and the trailer still found", () => {
    const out = new CappedOutput(10, M);
    let got: number | undefined;
    out.onTrailer((s) => {
      got = s;
    });
    const big = "y".repeat(5000);
    out.push(
      Buffer.concat([frame(1, utf8(big + M)), frame(1, utf8("7\n")), frame(2, utf8(`${M}7\n`))]),
    );
    expect(got).toBe(7);
    expect(out.text("stdout")).toBe("y".repeat(10));
    expect(out.truncated).toBe(true);
    expect(out.totals.stdout).toBe(5000);
  });
});

describe("create options carry the hardening table", () => {
  const cfg = SandboxOptionsSchema.parse({ workerId: "w1", capAdd: ["SETUID", "SETGID"] });
  const shape = { image: "sigil/busybox:1", memoryMb: 512, cpus: 0.5, pids: 128 };
  const labels = { job: "j1", pool: "cold" as const, run: "r1" };

  for (const tier of ["docker", "gvisor"] as const) {
    it(`for tier ${tier}`, () => {
      const o = createOptions(cfg, { ...shape, tier }, labels);
      const h = o.HostConfig!;
      expect(h.Runtime).toBe(tier === "gvisor" ? "runsc" : "runc");
      expect(h.Memory).toBe(512 * 1024 * 1024);
      expect(h.MemorySwap).toBe(h.Memory);
      expect(h.NanoCpus).toBe(500_000_000);
      expect(h.NetworkMode).toBe("none");
      expect(o.NetworkDisabled).toBe(true);
      expect(h.ReadonlyRootfs).toBe(true);
      expect(Object.keys(h.Tmpfs ?? {}).sort()).toEqual(["/tmp", "/work"]);
      expect(h.Tmpfs?.["/work"]).toMatch(/size=64m/);
      expect(h.Tmpfs?.["/tmp"]).toMatch(/size=64m/);
      expect(h.SecurityOpt).toEqual(["no-new-privileges"]);
      expect(h.CapDrop).toEqual(["ALL"]);
      expect(h.CapAdd).toEqual(["SETUID", "SETGID"]);
      expect(h.Privileged).toBe(false);
      expect(o.User).toBe("1000:1000");
      expect(h.PidsLimit).toBe(tier === "gvisor" ? runscHostPids(128) : 128);
      const nproc = h.Ulimits?.find((u) => u.Name === "nproc");
      expect(nproc?.Hard).toBe(tier === "gvisor" ? 128 : undefined);
      expect(o.Labels).toMatchObject({
        "sigil.job": "j1",
        "sigil.tier": tier,
        "sigil.worker": "w1",
      });
      expect(h.LogConfig?.Type).toBe("none");
    });
  }
});
