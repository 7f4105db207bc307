// Demultiplexes Docker's attach stream (non-TTY: 8-byte frame headers, stream 1 = stdout,
// 2 = stderr) and keeps at most `cap` bytes of each stream.
//
// Past the cap we keep draining and discard (we do not kill): the job keeps its own exit
// status and never blocks on a full pipe, and the wall-clock deadline bounds what draining
// can cost. Docker's log driver is "none" for sandbox containers, so nothing is written to disk.

export class CappedOutput {
  private readonly chunks: [Uint8Array[], Uint8Array[]] = [[], []];
  private readonly kept = [0, 0];
  private readonly seen = [0, 0];
  // Parser state: a partial frame header, and the stream/remaining bytes of the current frame.
  private header = new Uint8Array(8);
  private headerLen = 0;
  private stream = 0;
  private remaining = 0;

  constructor(private readonly cap: number) {}

  push(buf: Uint8Array): void {
    let off = 0;
    while (off < buf.length) {
      if (this.remaining === 0) {
        const take = Math.min(8 - this.headerLen, buf.length - off);
        this.header.set(buf.subarray(off, off + take), this.headerLen);
        this.headerLen += take;
        off += take;
        if (this.headerLen < 8) return;
        this.headerLen = 0;
        const h = this.header;
        this.stream = h[0] ?? 0;
        this.remaining =
          (((h[4] ?? 0) << 24) | ((h[5] ?? 0) << 16) | ((h[6] ?? 0) << 8) | (h[7] ?? 0)) >>> 0;
        this.header = new Uint8Array(8);
        continue;
      }
      const n = Math.min(this.remaining, buf.length - off);
      this.keep(this.stream, buf.subarray(off, off + n));
      this.remaining -= n;
      off += n;
    }
  }

  private keep(stream: number, data: Uint8Array): void {
    // Stream 1 is stdout; anything else (2 = stderr; 0 never appears without a TTY) is stderr.
    const i = stream === 1 ? 0 : 1;
    this.seen[i] = (this.seen[i] ?? 0) + data.length;
    const room = this.cap - (this.kept[i] ?? 0);
    if (room <= 0) return;
    const part = data.length <= room ? data : data.subarray(0, room);
    // Copy: the socket may reuse its buffer.
    this.chunks[i].push(Uint8Array.from(part));
    this.kept[i] = (this.kept[i] ?? 0) + part.length;
  }

  get truncated(): boolean {
    return (this.seen[0] ?? 0) > this.cap || (this.seen[1] ?? 0) > this.cap;
  }

  /** Bytes the job wrote, including what was discarded. */
  get totals(): { stdout: number; stderr: number } {
    return { stdout: this.seen[0] ?? 0, stderr: this.seen[1] ?? 0 };
  }

  text(which: "stdout" | "stderr"): string {
    return Buffer.concat(this.chunks[which === "stdout" ? 0 : 1]).toString("utf8");
  }
}
