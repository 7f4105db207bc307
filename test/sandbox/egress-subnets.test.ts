// Job networks from `[network] job_subnet_pool` (docs/sandbox.md, "Egress"): the pure carving of
// the pool, the configuration's refusals, and real Docker networks: more at once than Docker's
// default pools hold, a subnet someone else has is skipped, an exhausted pool is a clear error,
// and closed networks give their subnets back.
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { configSchema } from "../../shared/config/schema";
import {
  subnetGateway,
  subnetOfPool,
  subnetPoolProblem,
  subnetPoolSize,
} from "../../shared/jobs/egress";
import { JobNetworks, type OpenJobNetwork } from "../../worker/egress/network";

describe("job_subnet_pool: carving and configuration", () => {
  it("carves /28s in order, wrapping at the pool's end", () => {
    expect(subnetPoolSize("10.0.0.0/24")).toBe(16);
    expect(subnetOfPool("10.0.0.0/24", 0)).toBe("10.0.0.0/28");
    expect(subnetOfPool("10.0.0.0/24", 1)).toBe("10.0.0.16/28");
    expect(subnetOfPool("10.0.0.0/24", 15)).toBe("10.0.0.240/28");
    expect(subnetOfPool("10.0.0.0/24", 16)).toBe("10.0.0.0/28");
    expect(subnetOfPool("10.255.255.240/28", 7)).toBe("10.255.255.240/28");
    expect(subnetOfPool("192.168.0.0/16", 4095)).toBe("192.168.255.240/28");
    expect(subnetOfPool("10.0.0.0/8", 2 ** 32 - 1)).toBe("10.255.255.240/28");
    expect(subnetGateway("10.255.255.240/28")).toBe("10.255.255.241");
  });

  it("refuses pools that are not IPv4 networks of /8 to /28", () => {
    const parse = (v: string) => configSchema.safeParse({ network: { job_subnet_pool: v } });
    expect(parse("").success).toBe(true);
    expect(parse("10.233.0.0/16").success).toBe(true);
    for (const bad of [
      "10.233.0.1/16",
      "10.233.0.0/29",
      "10.0.0.0/7",
      "fd00::/64",
      "10.233.0.0",
      "not-a-cidr",
      "10.233.0.0/16 ",
      "１0.233.0.0/16",
    ]) {
      const r = parse(bad);
      expect(r.success, bad).toBe(false);
      expect(JSON.stringify(r.error?.issues), bad).toContain("job_subnet_pool");
    }
    expect(subnetPoolProblem("fd00::/64")).toMatch(/IPv4/);
    expect(subnetPoolProblem("10.0.0.0/30")).toMatch(/prefix/);
  });
});

describe("job_subnet_pool: real job networks", () => {
  const docker = new Docker();
  const squatters: Docker.Network[] = [];
  afterAll(async () => {
    for (const n of squatters) await n.remove().catch(() => {});
  });

  const networksOn = (pool: string) =>
    new JobNetworks({
      docker,
      workerId: `subnets-${process.pid}`,
      runId: `run-${process.pid}`,
      network: configSchema.parse({
        network: { egress: true, resolvers: ["127.0.0.1:53"], job_subnet_pool: pool },
      }).network,
    });
  const rules = [{ cidr: "203.0.113.0/24", ports: [443], protocol: "tcp" as const }];
  const subnetOf = async (o: OpenJobNetwork): Promise<string> => {
    const info = (await docker.getNetwork(o.attachment.network).inspect()) as {
      IPAM: { Config: { Subnet: string }[] };
    };
    return info.IPAM.Config[0]!.Subnet;
  };

  it("opens more job networks at once than Docker's default pools hold, each on its own /28 of the pool", async () => {
    const networks = networksOn("10.234.0.0/22");
    const settled = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => networks.openFor(`job-${i}`, rules)),
    );
    const open = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    try {
      expect(settled.filter((r) => r.status === "rejected")).toEqual([]);
      const subnets = await Promise.all(open.map(subnetOf));
      expect(new Set(subnets).size).toBe(40);
      for (const s of subnets) expect(s).toMatch(/^10\.234\.[0-3]\.\d+\/28$/);
      for (const o of open) expect(o.gateway).toMatch(/^10\.234\./);
    } finally {
      await Promise.all(open.map((o) => o.close()));
    }
  }, 240_000);

  it("skips a subnet another network holds, says so when the pool is full, and reuses closed subnets", async () => {
    // Someone else's network on the pool's first /28: Docker refuses the overlap, the next is tried.
    squatters.push(
      await docker.createNetwork({
        Name: `sigil-test-squatter-${process.pid}`,
        Internal: true,
        IPAM: { Driver: "default", Config: [{ Subnet: "10.235.0.0/28" }] },
      }),
    );
    const networks = networksOn("10.235.0.0/26");
    const held = new Set<OpenJobNetwork>();
    const openOne = async (job: string) => {
      const o = await networks.openFor(job, rules);
      held.add(o);
      return o;
    };
    try {
      const open = await Promise.all([1, 2, 3].map((i) => openOne(`job-${i}`)));
      const subnets = await Promise.all(open.map(subnetOf));
      expect([...subnets].sort()).toEqual(["10.235.0.16/28", "10.235.0.32/28", "10.235.0.48/28"]);
      await expect(openOne("job-4")).rejects.toThrow(
        /no free \/28 in \[network\] job_subnet_pool 10\.235\.0\.0\/26/,
      );
      await open[1]!.close();
      held.delete(open[1]!);
      expect(await subnetOf(await openOne("job-5"))).toBe(subnets[1]);
    } finally {
      await Promise.all([...held].map((o) => o.close()));
    }
  }, 120_000);
});
