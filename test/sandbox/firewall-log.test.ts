// Reading a job network's firewall drops from kernel log records (worker/egress/firewall-log.ts,
// docs/sandbox.md "Egress"): the LOG rule's records for the job's bridge become flows; anything
// else in the host's kernel log is ignored. The real path (iptables LOG, /dev/kmsg) is exercised
// by egress-docker.test.ts.
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import {
  type DroppedFlow,
  KernelLog,
  logPrefix,
  parseDropRecord,
  watchDrops,
} from "../../worker/egress/firewall-log";

const BRIDGE = "sgj0123456789";
const rec = (usec: number, text: string) => `6,1234,${usec},-;${text}\n`;
const TCP = `${logPrefix(BRIDGE)}IN=${BRIDGE} OUT= MAC=02:42:c0:a8:50:02:02:42:c0:a8:50:01:08:00 SRC=192.168.80.2 DST=192.168.80.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=40001 DPT=38705 WINDOW=64240 RES=0x00 SYN URGP=0`;
const UDP = `${logPrefix(BRIDGE)}IN=${BRIDGE} OUT= SRC=192.168.80.2 DST=192.168.80.1 LEN=29 PROTO=UDP SPT=5353 DPT=49247 LEN=9`;

describe("firewall drop records", () => {
  it("parses TCP and UDP drops with their ports and the time they happened", () => {
    // Monotonic now 10,000 ms, wall now 1,700,000,010,000: a record at 9,500 ms was 500 ms ago.
    const t = parseDropRecord(rec(9_500_000, TCP), 10_000, 1_700_000_010_000);
    expect(t).toEqual({
      bridge: BRIDGE,
      flow: {
        protocol: "tcp",
        source: "192.168.80.2",
        sourcePort: 40001,
        destination: "192.168.80.1",
        port: 38705,
        at: 1_700_000_009_500,
      },
    });
    expect(parseDropRecord(rec(1, UDP), 10_000, 0)?.flow).toMatchObject({
      protocol: "udp",
      port: 49247,
      sourcePort: 5353,
    });
    const icmp = `${logPrefix(BRIDGE)}IN=${BRIDGE} OUT= SRC=192.168.80.2 DST=10.1.1.1 LEN=84 PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=1`;
    expect(parseDropRecord(rec(1, icmp), 10_000, 0)?.flow).toMatchObject({
      protocol: "other",
      destination: "10.1.1.1",
      port: 0,
    });
  });

  it("ignores the rest of the kernel log and records that only look alike", () => {
    for (const other of [
      rec(1, "docker0: port 1(veth1ca9513) entered disabled state"),
      rec(1, TCP.replace("sigil:", "sigul:")),
      rec(1, TCP.replace(BRIDGE, "sgjXYZ")),
      rec(1, `${logPrefix(BRIDGE)}IN=${BRIDGE} OUT= PROTO=TCP`),
      `${TCP}\n`,
      "",
      "6,1,2,-;",
      rec(1, `${logPrefix(BRIDGE)}\u0000\uFFFD SRC= DST=`),
    ])
      expect(parseDropRecord(other, 10_000, 0), other).toBeNull();
  });
});

describe("the kernel log reader", () => {
  it("hands each flow of a watched bridge on once, and nothing of other bridges", () => {
    // A FIFO stands in for /dev/kmsg: a real descriptor read non-blocking, one record per write.
    const dir = mkdtempSync(join(tmpdir(), "sigil-kmsg-"));
    const path = join(dir, "kmsg");
    execFileSync("mkfifo", [path]);
    const log = new KernelLog(path);
    const flows: DroppedFlow[] = [];
    const w = watchDrops(BRIDGE, (f) => flows.push(f), log);
    const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      const send = (record: string) => {
        writeSync(writer, record);
        w.drain();
      };
      send(rec(1, TCP));
      send(rec(2, TCP)); // the SYN's retry: the same flow
      send(rec(3, TCP.replace(BRIDGE, "sgjffffffffff")));
      send(rec(4, UDP));
      send(rec(5, "eth0: link up"));
      expect(flows.map((f) => `${f.protocol}:${f.port}`)).toEqual(["tcp:38705", "udp:49247"]);
      w.stop();
    } finally {
      closeSync(writer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a kernel log that cannot be opened leaves the job alone and is said once on stderr", () => {
    const said = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const log = new KernelLog("/nonexistent/kmsg");
      const a = watchDrops(BRIDGE, () => {}, log);
      const b = watchDrops("sgj9999999999", () => {}, log);
      a.drain();
      a.stop();
      b.stop();
      expect(said).toHaveBeenCalledTimes(1);
      expect(String(said.mock.calls[0]?.[0])).toMatch(/\/nonexistent\/kmsg.*not itemised/);
    } finally {
      said.mockRestore();
    }
  });
});
