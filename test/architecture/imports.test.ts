// The import graph reads shared core → platform adapters → entries (docs/architecture.md
// "Folders"): no entry imports another's internals, code that runs on the edge imports nothing
// Node-only, and no `as never` hides a type mismatch. Read from the source text, so it needs
// nothing but the tree.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

/** What each top-level folder may import (besides itself and npm packages). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  shared: [],
  sdk: ["shared"],
  platform: ["shared"],
  functions: ["shared", "platform"],
  worker: ["shared", "platform", "sdk"],
  scripts: ["shared", "platform", "sdk"],
  cli: ["shared", "platform", "sdk"],
  examples: ["shared", "sdk"],
  // The browser app: the SDK is the Web-standard client every other client uses (docs/console.md).
  console: ["shared", "sdk"],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "dist" ? [] : sources(path);
    return /\.tsx?$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const files = Object.keys(MAY_IMPORT).flatMap((top) => sources(join(ROOT, top)));

/** Static imports and re-exports, and import() with a literal specifier. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gms))
    out.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s+"([^"]+)"/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) out.push(m[1]!);
  return out;
}

const topOf = (path: string) => relative(ROOT, path).split("/")[0]!;

describe("the import graph", () => {
  it("has the files it checks", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.some((f) => f.includes(join("platform", "node")))).toBe(true);
  });

  it("imports only from the folders each folder may use", () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = topOf(file);
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        if (!spec.startsWith(".")) continue;
        const to = topOf(resolve(dirname(file), spec));
        if (to !== from && !MAY_IMPORT[from]!.includes(to))
          wrong.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("code that runs on the edge or in the browser imports nothing Node-only", () => {
    // Everything in functions/ but its Node root runs in workerd (functions/edge bundles it).
    const nodeOnly = /^(node:|ioredis$|bullmq$|dockerode$|@hono\/node-server)/;
    const wrong: string[] = [];
    for (const file of files) {
      const rel = relative(ROOT, file);
      // console/src runs in the browser; its vite.config.ts runs at build time on Node.
      const edge = rel.startsWith("functions/") && !rel.startsWith("functions/node/");
      if (!edge && !rel.startsWith("console/src/")) continue;
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        const platform = spec.startsWith(".") && topOf(resolve(dirname(file), spec)) === "platform";
        if (platform || nodeOnly.test(spec)) wrong.push(`${rel} imports ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe("types", () => {
  it("no `as never` papers over a type mismatch, in the product or its tests", () => {
    // Tests too: a hostile input that is ill-typed on purpose says so with @ts-expect-error,
    // which fails the typecheck if the input ever becomes well-typed.
    const self = resolve(import.meta.filename);
    const found = [...files, ...sources(join(ROOT, "test")).filter((f) => f !== self)]
      .filter((f) => /\bas never\b/.test(readFileSync(f, "utf8")))
      .map((f) => relative(ROOT, f));
    expect(found).toEqual([]);
  });
});
