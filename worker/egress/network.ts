// Network placement of a job with egress rules (docs/sandbox.md, "Egress"): a Docker `--internal`
// bridge network of its own (no route out), the job's proxy and filtering resolver listening on
// that network's gateway address on the host, and host firewall rules so that from the bridge
// only those two ports are reachable (nothing else on the host, such as Redis or a service on
// 0.0.0.0, and nothing beyond it). Everything is labelled / named after the bridge so that a
// worker that died leaves nothing another run cannot find and remove.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type Docker from "dockerode";
import type { SigilConfig } from "../../shared/config";
import {
  type EgressRule,
  subnetGateway,
  subnetOfPool,
  subnetPoolSize,
} from "../../shared/jobs/egress";
import { formatOwner, liveness, type Owner, parseOwner } from "../sandbox/owner";
import { logPrefix, watchDrops } from "./firewall-log";
import { type ConnectionLogEntry, type EgressSummary, startJobEgress } from "./index";

const run = promisify(execFile);

/** Bridge interfaces of job networks: `sgj` + 10 hex (Linux allows 15 characters). */
const BRIDGE_RE = /\bsgj[0-9a-f]{10}\b/;
const chainOf = (bridge: string) => `SIGIL-${bridge}`;

export const NETWORK_LABEL = {
  egress: "sigil.egress",
  job: "sigil.job",
  worker: "sigil.worker",
  run: "sigil.run",
  owner: "sigil.owner",
} as const;

/** What the container needs to join its job network. */
export interface NetworkAttachment {
  network: string;
  /** HTTP_PROXY and friends, pointing at the job's proxy. */
  env: string[];
  /** `/etc/resolv.conf` naming the filtering resolver (the only name server the job has). */
  binds: string[];
}

export interface JobEgressOutcome {
  summary: EgressSummary;
  /** Every connection, allowed or refused, in order (each also went to onLog as it happened). */
  log: ConnectionLogEntry[];
}

export interface OpenJobNetwork {
  attachment: NetworkAttachment;
  gateway: string;
  proxyPort: number;
  dnsPort: number;
  /** Removes firewall rules and network, stops proxy and resolver; the connection log summary. */
  close(): Promise<JobEgressOutcome>;
}

async function iptables(bin: "iptables" | "ip6tables", args: string[]): Promise<void> {
  // -w: wait for the xtables lock (dockerd and other workers edit the same tables).
  await run(bin, ["-w", "5", ...args]);
}

async function rulesOf(bin: "iptables" | "ip6tables", table: string): Promise<string[]> {
  const { stdout } = await run(bin, ["-w", "5", "-t", table, "-S"]);
  return stdout.split("\n").filter((l) => l.length > 0);
}

/** The host's own addresses: never destinations (docs/sandbox.md, "Egress"). */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
}

/** `host:port` of the Redis URL, refused by every job's proxy whatever the exceptions say. */
export function redisEndpoint(url: string): { address: string; port: number } | null {
  try {
    const u = new URL(url);
    return { address: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 6379) };
  } catch {
    return null;
  }
}

/**
 * The firewall of one job network. INPUT from the bridge reaches only the proxy (tcp) and the
 * resolver (udp) on the gateway; DNS to the gateway's port 53 is redirected to the resolver (a
 * resolv.conf cannot name a port); FORWARD from or to the bridge is dropped (Docker's internal
 * network does that already; this does not depend on it); IPv6 from the bridge is dropped.
 */
/** The LOG rule's match and target: 20 packets a second per rule, bursts of 50, level info. */
const logDrop = (bridge: string) => [
  "-m",
  "limit",
  "--limit",
  "20/second",
  "--limit-burst",
  "50",
  "-j",
  "LOG",
  "--log-prefix",
  logPrefix(bridge),
  "--log-level",
  "6",
];

function firewallRules(bridge: string, gw: string, proxyPort: number, dnsPort: number) {
  const chain = chainOf(bridge);
  return {
    v4: [
      ["-t", "filter", "-N", chain],
      [
        "-t",
        "filter",
        "-A",
        chain,
        "-p",
        "tcp",
        "-d",
        gw,
        "--dport",
        `${proxyPort}`,
        "-j",
        "ACCEPT",
      ],
      ["-t", "filter", "-A", chain, "-p", "udp", "-d", gw, "--dport", `${dnsPort}`, "-j", "ACCEPT"],
      // What is dropped is logged first (firewall-log.ts reads it into the job's log), at a
      // bounded rate: the kernel log is the host's.
      ["-t", "filter", "-A", chain, ...logDrop(bridge)],
      ["-t", "filter", "-A", chain, "-j", "DROP"],
      ["-t", "filter", "-I", "INPUT", "1", "-i", bridge, "-j", chain],
      ["-t", "filter", "-I", "FORWARD", "1", "-i", bridge, "-j", "DROP"],
      ["-t", "filter", "-I", "FORWARD", "1", "-o", bridge, "-j", "DROP"],
      ["-t", "filter", "-I", "FORWARD", "1", "-i", bridge, ...logDrop(bridge)],
      // nat's DNAT happens before INPUT, so INPUT sees the resolver's own port.
      [
        "-t",
        "nat",
        "-I",
        "PREROUTING",
        "1",
        "-i",
        bridge,
        "-p",
        "udp",
        "-d",
        gw,
        "--dport",
        "53",
        "-j",
        "DNAT",
        "--to-destination",
        `${gw}:${dnsPort}`,
      ],
    ],
    v6: [
      ["-t", "filter", "-I", "INPUT", "1", "-i", bridge, "-j", "DROP"],
      ["-t", "filter", "-I", "FORWARD", "1", "-i", bridge, "-j", "DROP"],
    ],
  };
}

/**
 * Deletes every rule naming a job bridge (and its chain) except those of `keep`; the rules of a
 * job network are found by its bridge name alone, so leftovers of a dead worker go too.
 */
export async function removeFirewallRules(keep: (bridge: string) => boolean): Promise<number> {
  let removed = 0;
  for (const bin of ["iptables", "ip6tables"] as const) {
    for (const table of ["filter", "nat"]) {
      let lines: string[];
      try {
        lines = await rulesOf(bin, table);
      } catch {
        continue;
      }
      const chains: string[] = [];
      for (const line of lines) {
        const bridge = BRIDGE_RE.exec(line)?.[0];
        if (!bridge || keep(bridge)) continue;
        if (line.startsWith("-N ")) chains.push(line.slice(3));
        else if (line.startsWith("-A ")) {
          // Words as iptables -S prints them: a LOG rule's prefix is quoted (it ends in a space).
          const args = (line.slice(3).match(/"[^"]*"|\S+/g) ?? []).map((w) =>
            w.startsWith('"') ? w.slice(1, -1) : w,
          );
          // A rule inside a chain that is deleted whole is dropped with it (-F below).
          if (chains.includes(args[0] ?? "") || args[0]?.startsWith("SIGIL-")) continue;
          await iptables(bin, ["-t", table, "-D", ...args]).then(
            () => removed++,
            () => {},
          );
        }
      }
      for (const chain of chains) {
        await iptables(bin, ["-t", table, "-F", chain]).catch(() => {});
        await iptables(bin, ["-t", table, "-X", chain]).then(
          () => removed++,
          () => {},
        );
      }
    }
  }
  return removed;
}

export interface JobNetworksOptions {
  docker: Docker;
  workerId: string;
  /** This process's run (sandbox.ts runId): an earlier run's networks are leftovers. */
  runId: string;
  owner?: Owner;
  network: SigilConfig["network"];
  /** Endpoints every job's proxy refuses (Redis); the job's own proxy and resolver are added. */
  deniedEndpoints?: readonly { address: string; port: number }[];
  onLog?: (jobId: string, e: ConnectionLogEntry) => void;
}

/** Docker's refusal of a subnet another network (this worker's or anyone's) already has. */
const OVERLAP_RE = /overlap/i;
/** Subnets of the pool tried per job before giving up (the pool may be shared by workers). */
const SUBNET_TRIES = 64;

export class JobNetworks {
  private readonly open = new Set<string>();
  /** Pool subnets this process's job networks hold. */
  private readonly subnets = new Set<string>();
  /** Where the next pool search starts: random, so workers sharing a pool rarely collide. */
  private nextSubnet = randomBytes(4).readUInt32BE(0);

  constructor(private readonly o: JobNetworksOptions) {}

  /**
   * Creates the bridge network: on Docker's default pools, or on a free /28 of `[network]
   * job_subnet_pool`, skipping subnets in use (ours, or another network's: Docker says overlap).
   */
  private async createNetwork(
    options: Docker.NetworkCreateOptions,
  ): Promise<{ net: Docker.Network; subnet?: string }> {
    const pool = this.o.network.job_subnet_pool;
    if (pool === "") return { net: await this.o.docker.createNetwork(options) };
    const size = subnetPoolSize(pool);
    for (let tried = 0, i = 0; tried < SUBNET_TRIES && i < size; i++) {
      const subnet = subnetOfPool(pool, this.nextSubnet++);
      if (this.subnets.has(subnet)) continue;
      tried++;
      this.subnets.add(subnet);
      try {
        const net = await this.o.docker.createNetwork({
          ...options,
          IPAM: { Driver: "default", Config: [{ Subnet: subnet, Gateway: subnetGateway(subnet) }] },
        });
        return { net, subnet };
      } catch (e) {
        this.subnets.delete(subnet);
        if (!OVERLAP_RE.test((e as Error).message)) throw e;
      }
    }
    throw new Error(
      `no free /28 in [network] job_subnet_pool ${pool} (${this.subnets.size} held by this worker)`,
    );
  }

  /** Creates the job's network, proxy, resolver and firewall; undone whole if any step fails. */
  async openFor(jobId: string, rules: readonly EgressRule[]): Promise<OpenJobNetwork> {
    const bridge = `sgj${randomBytes(5).toString("hex")}`;
    this.open.add(bridge);
    const undo: (() => Promise<unknown>)[] = [];
    const unwind = async () => {
      for (const f of undo.reverse()) await f().catch(() => {});
      this.open.delete(bridge);
    };
    try {
      const { net, subnet } = await this.createNetwork({
        Name: bridge,
        Driver: "bridge",
        Internal: true,
        CheckDuplicate: true,
        Options: {
          "com.docker.network.bridge.name": bridge,
          "com.docker.network.bridge.enable_ip_masquerade": "false",
        },
        Labels: {
          [NETWORK_LABEL.egress]: "1",
          [NETWORK_LABEL.job]: jobId,
          [NETWORK_LABEL.worker]: this.o.workerId,
          [NETWORK_LABEL.run]: this.o.runId,
          ...(this.o.owner ? { [NETWORK_LABEL.owner]: formatOwner(this.o.owner) } : {}),
        },
      });
      undo.push(async () => {
        await net.remove();
        if (subnet) this.subnets.delete(subnet);
      });
      const info = (await net.inspect()) as { IPAM?: { Config?: { Gateway?: string }[] } };
      const gateway = info.IPAM?.Config?.[0]?.Gateway;
      if (!gateway) throw new Error(`network ${bridge} has no gateway address`);
      let outcome: JobEgressOutcome | undefined;
      const egress = await startJobEgress({
        jobId,
        rules,
        network: this.o.network,
        bindHost: gateway,
        hostAddresses: [...new Set([gateway, ...hostAddresses()])],
        deniedEndpoints: this.o.deniedEndpoints ?? [],
        ...(this.o.onLog ? { onLog: (e: ConnectionLogEntry) => this.o.onLog?.(jobId, e) } : {}),
      });
      const drops = watchDrops(bridge, (f) => egress.proxy.recordDrop(f));
      undo.push(async () => drops.stop());
      const stopEgress = async () => {
        if (!outcome) {
          // Every packet the job sent is in the kernel log by now: LOG writes in its path.
          drops.drain();
          egress.proxy.endDrops();
        }
        outcome ??= { summary: await egress.stop(), log: [...egress.proxy.log] };
        return outcome;
      };
      undo.push(stopEgress);
      const fw = firewallRules(bridge, gateway, egress.proxyPort, egress.dnsPort);
      undo.push(() => removeFirewallRules((b) => b !== bridge));
      for (const r of fw.v4) await iptables("iptables", r);
      for (const r of fw.v6) await iptables("ip6tables", r).catch(() => {});
      const dir = mkdtempSync(join(tmpdir(), `sigil-${bridge}-`));
      undo.push(async () => rmSync(dir, { recursive: true, force: true }));
      const resolv = join(dir, "resolv.conf");
      writeFileSync(resolv, `nameserver ${gateway}\noptions ndots:0 timeout:2 attempts:1\n`, {
        mode: 0o644,
      });
      const proxy = `http://${gateway}:${egress.proxyPort}`;
      return {
        gateway,
        proxyPort: egress.proxyPort,
        dnsPort: egress.dnsPort,
        attachment: {
          network: bridge,
          env: [
            `HTTP_PROXY=${proxy}`,
            `HTTPS_PROXY=${proxy}`,
            `http_proxy=${proxy}`,
            `https_proxy=${proxy}`,
          ],
          binds: [`${resolv}:/etc/resolv.conf:ro`],
        },
        close: async () => {
          const out = await stopEgress();
          await unwind();
          return out;
        },
      };
    } catch (e) {
      await unwind();
      throw e;
    }
  }

  /**
   * Removes job networks and firewall rules left behind: this worker's from an earlier run, and
   * any whose creating process is provably gone; rules whose network no longer exists go too.
   * Never a live process's.
   */
  async cleanupOrphans(self: Owner | undefined): Promise<number> {
    const list = await this.o.docker.listNetworks({
      filters: { label: [`${NETWORK_LABEL.egress}=1`] },
    });
    let removed = 0;
    for (const n of list) {
      const labels = n.Labels ?? {};
      const owner = parseOwner(labels[NETWORK_LABEL.owner]);
      const mine = labels[NETWORK_LABEL.worker] === this.o.workerId;
      const stale =
        (mine && labels[NETWORK_LABEL.run] !== this.o.runId) ||
        (owner !== undefined && self !== undefined && liveness(owner, self) === "dead");
      if (!stale) continue;
      // Containers still attached (a crashed worker's) go first, or the network cannot.
      const inspected = (await this.o.docker
        .getNetwork(n.Id)
        .inspect()
        .catch(() => null)) as { Containers?: Record<string, unknown> } | null;
      for (const id of Object.keys(inspected?.Containers ?? {}))
        await this.o.docker
          .getContainer(id)
          .remove({ force: true, v: true })
          .catch(() => {});
      await this.o.docker
        .getNetwork(n.Id)
        .remove()
        .then(
          () => removed++,
          () => {},
        );
    }
    // A bridge that still exists is a live network's (stale ones were just removed, and a network
    // exists before its rules do); rules of any other job bridge are leftovers.
    removed += await removeFirewallRules(
      (b) => this.open.has(b) || existsSync(`/sys/class/net/${b}`),
    );
    return removed;
  }
}
