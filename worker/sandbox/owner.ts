// Which process owns a container, in a form any worker on the same host can check: the kernel's
// boot id, the pid namespace, the pid and the process's start time (in clock ticks since boot,
// from /proc/<pid>/stat). A pid alone is not proof (pids are reused); pid + start time on the same
// boot and in the same pid namespace is. A worker that was SIGKILLed cannot remove its warm
// containers, so the next worker on the host removes every container whose owner is provably
// gone, and never one whose owner it cannot judge (another host's or namespace's) or is alive.
import { readFileSync, readlinkSync } from "node:fs";

export interface Owner {
  boot: string;
  pidns: string;
  pid: number;
  /** Start time of the process, clock ticks since boot (field 22 of /proc/<pid>/stat). */
  start: string;
}

export type Liveness = "alive" | "dead" | "unknown";

interface ProcStat {
  state: string;
  start: string;
}

/** State and start time of a process, or undefined when there is no such process. */
function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain ") ": cut at the last.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const start = fields[19];
  return state && start ? { state, start } : undefined;
}

/** This process's identity; undefined where /proc does not tell (then nothing is judged). */
export function selfOwner(): Owner | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const pidns = readlinkSync("/proc/self/ns/pid");
    const me = procStat(process.pid);
    if (!boot || !pidns || !me) return undefined;
    return { boot, pidns, pid: process.pid, start: me.start };
  } catch {
    return undefined;
  }
}

export const formatOwner = (o: Owner): string => `${o.boot}/${o.pidns}/${o.pid}/${o.start}`;

export function parseOwner(label: string | undefined): Owner | undefined {
  const m = /^([0-9a-f-]{36})\/(pid:\[\d+\])\/(\d+)\/(\d+)$/.exec(label ?? "");
  if (!m) return undefined;
  return { boot: m[1]!, pidns: m[2]!, pid: Number(m[3]), start: m[4]! };
}

/**
 * Whether the owner still runs, judged from `self`'s view: only an owner on the same boot and in
 * the same pid namespace can be judged; a missing process, a zombie, or a pid now held by a
 * process that started at another time is dead.
 */
export function liveness(owner: Owner, self: Owner): Liveness {
  if (owner.boot !== self.boot || owner.pidns !== self.pidns) return "unknown";
  const now = procStat(owner.pid);
  if (!now || now.state === "Z" || now.state === "X") return "dead";
  return now.start === owner.start ? "alive" : "dead";
}
