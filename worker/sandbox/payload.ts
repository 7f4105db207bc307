// Turns a validated job spec into the one archive a warm container accepts on stdin:
//   .sigil/run    a POSIX sh script (env exports, then `exec` of the job)
//   .sigil/stdin  the job's stdin
//   .sigil/main.* the code, for code jobs
//   <files>       the job's files, relative to /work
// The image entrypoint (infra/images.sh) unpacks it into /work and runs
// `sh /work/.sigil/run < /work/.sigil/stdin`.
import { utf8 } from "../../shared/encoding";
import { createTar, type TarEntry } from "./tar";
import { type JobSpec, SandboxSpecError } from "./types";

/** Single-quote for POSIX sh: the only character needing care inside '...' is ' itself. */
export const shQuote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

export function buildRunScript(spec: JobSpec): string {
  const lines = ["cd /work || exit 125"];
  for (const [k, v] of Object.entries(spec.env ?? {})) lines.push(`export ${k}=${shQuote(v)}`);
  if (spec.command) {
    lines.push(`exec ${spec.command.map(shQuote).join(" ")}`);
  } else if ((spec.language ?? "python") === "python") {
    lines.push("exec python3 /work/.sigil/main.py");
  } else {
    lines.push("exec /bin/sh /work/.sigil/main.sh");
  }
  return `${lines.join("\n")}\n`;
}

/** The archive bytes; throws SandboxSpecError when the payload is over maxBytes. */
export function buildJobArchive(spec: JobSpec, maxBytes: number): Uint8Array {
  const entries: TarEntry[] = [
    { path: ".sigil/run", data: utf8(buildRunScript(spec)) },
    { path: ".sigil/stdin", data: utf8(spec.stdin ?? "") },
  ];
  if (spec.code !== undefined) {
    const file = (spec.language ?? "python") === "python" ? "main.py" : "main.sh";
    entries.push({ path: `.sigil/${file}`, data: utf8(spec.code) });
  }
  const files = Object.keys(spec.files ?? {});
  const fileSet = new Set(files);
  for (const path of files) {
    // "a" and "a/b" cannot both exist: the unpack would fail inside the container.
    const segs = path.split("/");
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join("/");
      if (fileSet.has(dir))
        throw new SandboxSpecError(`file ${dir} is also a directory of ${path}`);
    }
    entries.push({ path, data: utf8(spec.files?.[path] ?? "") });
  }
  let payload = 0;
  for (const e of entries) payload += e.data?.length ?? 0;
  if (payload > maxBytes) {
    throw new SandboxSpecError(`job payload is ${payload} bytes, over the ${maxBytes} byte limit`);
  }
  try {
    return createTar(entries);
  } catch (e) {
    throw new SandboxSpecError(`cannot pack job files: ${(e as Error).message}`);
  }
}
