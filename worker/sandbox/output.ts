// Demultiplexes Docker's attach stream (non-TTY: 8-byte frame headers, stream 1 = stdout,
// 2 = stderr) and keeps at most `cap` bytes of each stream.
//
// Past the cap we keep draining and discard (we do not kill): the job keeps its own exit
// status and never blocks on a full pipe, and the wall-clock deadline bounds what draining
// can cost. Docker's log driver is "none" for sandbox containers, so nothing is written to disk.
//
// Exit trailer: after the job ends, the image's entrypoint writes `<marker><status>\n` on stdout
// and on stderr, where the marker carries a per-job random nonce. Each pipe is FIFO, so once the
// trailer has arrived on both streams every byte the job wrote before it ended has arrived too,
// and the worker can report without waiting for the container's teardown (~30 ms under runc,
// ~55 ms under runsc here). The trailer and anything after it are never part of the output.

const NL = 0x0a;
const MAX_STATUS_DIGITS = 3;

class StreamState {
  readonly chunks: Uint8Array[] = [];
  kept = 0;
  seen = 0;
  /** Bytes held back because they may be the start of the trailer. */
  hold: Uint8Array = new Uint8Array(0);
  status: number | undefined;
  done = false;
}

export class CappedOutput {
  private readonly s: [StreamState, StreamState] = [new StreamState(), new StreamState()];
  // Parser state: a partial frame header, and the stream/remaining bytes of the current frame.
  private header = new Uint8Array(8);
  private headerLen = 0;
  private stream = 0;
  private remaining = 0;
  private readonly marker: Buffer | undefined;
  private trailerCb: ((status: number) => void) | undefined;

  /** `marker`: the exit trailer's prefix to watch for (absent: plain capture). */
  constructor(
    private readonly cap: number,
    marker?: string,
  ) {
    this.marker = marker ? Buffer.from(marker, "latin1") : undefined;
  }

  /** Called once, when the trailer has arrived on both streams with the same status. */
  onTrailer(cb: (status: number) => void): void {
    this.trailerCb = cb;
  }

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
      // Stream 1 is stdout; anything else (2 = stderr; 0 never appears without a TTY) is stderr.
      this.scan(this.s[this.stream === 1 ? 0 : 1], buf.subarray(off, off + n));
      this.remaining -= n;
      off += n;
    }
  }

  private scan(st: StreamState, data: Uint8Array): void {
    if (st.done) return; // after the trailer: a leftover background process, not the job's output
    const m = this.marker;
    if (!m) {
      this.keep(st, data);
      return;
    }
    const buf = st.hold.length ? Buffer.concat([st.hold, data]) : Buffer.from(data);
    const at = buf.indexOf(m);
    if (at >= 0) {
      const nl = buf.indexOf(NL, at + m.length);
      if (nl < 0 && buf.length - at - m.length <= MAX_STATUS_DIGITS) {
        // The status has not fully arrived yet.
        this.keep(st, buf.subarray(0, at));
        st.hold = Uint8Array.from(buf.subarray(at));
        return;
      }
      const digits = buf.subarray(at + m.length, nl < 0 ? buf.length : nl).toString("latin1");
      if (nl >= 0 && /^\d{1,3}$/.test(digits)) {
        this.keep(st, buf.subarray(0, at));
        st.hold = new Uint8Array(0);
        st.status = Number(digits);
        st.done = true;
        this.checkTrailer();
        return;
      }
      // Marker followed by garbage: not a trailer; it is output like any other byte.
    }
    // Hold back a tail that could be the start of a marker split across frames.
    const tail = Math.min(buf.length, m.length - 1);
    this.keep(st, buf.subarray(0, buf.length - tail));
    st.hold = Uint8Array.from(buf.subarray(buf.length - tail));
  }

  private checkTrailer(): void {
    const [out, err] = this.s;
    if (!out.done || !err.done || !this.trailerCb) return;
    const cb = this.trailerCb;
    this.trailerCb = undefined;
    if (out.status === err.status && out.status !== undefined) cb(out.status);
  }

  private keep(st: StreamState, data: Uint8Array): void {
    if (data.length === 0) return;
    st.seen += data.length;
    const room = this.cap - st.kept;
    if (room <= 0) return;
    const part = data.length <= room ? data : data.subarray(0, room);
    // Copy: the socket may reuse its buffer.
    st.chunks.push(Uint8Array.from(part));
    st.kept += part.length;
  }

  /** Ends capture: bytes still held back (no trailer came) are output after all. */
  finish(): void {
    for (const st of this.s) {
      if (!st.done && st.hold.length) this.keep(st, st.hold);
      st.hold = new Uint8Array(0);
      st.done = true;
    }
  }

  get truncated(): boolean {
    return this.s[0].seen > this.cap || this.s[1].seen > this.cap;
  }

  /** Bytes the job wrote, including what was discarded. */
  get totals(): { stdout: number; stderr: number } {
    return { stdout: this.s[0].seen, stderr: this.s[1].seen };
  }

  text(which: "stdout" | "stderr"): string {
    return Buffer.concat(this.s[which === "stdout" ? 0 : 1].chunks).toString("utf8");
  }
}
