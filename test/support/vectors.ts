// External test vectors, copied into the repository with their licences (test/vectors/README.md).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const vectorsDir = resolve(repoRoot, "test", "vectors");

export const vectorPath = (...parts: string[]): string => join(vectorsDir, ...parts);

export function readVectorJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), "utf8")) as T;
}
