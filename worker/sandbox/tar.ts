// Minimal POSIX ustar writer for the job archive (regular files and directories only).
// The archive is produced here from validated paths and read by the image's own tar
// (busybox or GNU), so only the small common subset of the format is needed.
import { splitUstarPath } from "../../shared/jobs/bounds";

export interface TarEntry {
  path: string;
  /** Omitted for a directory. */
  data?: Uint8Array;
  mode?: number;
}

const BLOCK = 512;
const enc = new TextEncoder();

function writeString(h: Uint8Array, offset: number, size: number, value: Uint8Array): void {
  if (value.length > size) throw new RangeError("tar header field too long");
  h.set(value, offset);
}

function writeOctal(h: Uint8Array, offset: number, size: number, value: number): void {
  const s = value.toString(8).padStart(size - 1, "0");
  if (s.length > size - 1) throw new RangeError("tar numeric field overflow");
  writeString(h, offset, size, enc.encode(`${s}\0`));
}

function splitPath(path: string): [Uint8Array, Uint8Array] {
  const parts = splitUstarPath(path);
  if (!parts) throw new RangeError(`path too long for a tar header: ${path}`);
  return parts;
}

function header(entry: TarEntry, mtime: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const isDir = entry.data === undefined;
  const [prefix, name] = splitPath(isDir ? `${entry.path}/` : entry.path);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, entry.mode ?? (isDir ? 0o755 : 0o644));
  writeOctal(h, 108, 8, 1000);
  writeOctal(h, 116, 8, 1000);
  writeOctal(h, 124, 12, entry.data?.length ?? 0);
  writeOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  h[156] = isDir ? 0x35 : 0x30;
  writeString(h, 257, 6, enc.encode("ustar\0"));
  writeString(h, 263, 2, enc.encode("00"));
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, enc.encode(`${sum.toString(8).padStart(6, "0")}\0 `));
  return h;
}

/** Build an archive; parent directories are emitted before their files. */
export function createTar(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)) {
  const seenDirs = new Set<string>();
  const parts: Uint8Array[] = [];
  const addDir = (path: string) => {
    if (seenDirs.has(path)) return;
    seenDirs.add(path);
    parts.push(header({ path }, mtime));
  };
  for (const e of entries) {
    const segs = e.path.split("/");
    for (let i = 1; i < segs.length; i++) addDir(segs.slice(0, i).join("/"));
    if (e.data === undefined) {
      addDir(e.path);
      continue;
    }
    parts.push(header(e, mtime), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(BLOCK * 2));
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
