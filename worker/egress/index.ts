// Per-job egress on a worker host (docs/sandbox.md, "Egress"): the job's proxy and its filtering
// resolver, bound on an address only the job's internal network reaches, and the summary the
// signed result carries.
import type { SigilConfig } from "../../shared/config";
import {
  checkDestination,
  type EgressRule,
  egressSettings,
  nameAllowed,
} from "../../shared/jobs/egress";
import { type DnsLogEntry, resolveName, startFilteringDns } from "./dns";
import { type ConnectionLogEntry, type EgressSummary, JobProxy } from "./proxy";

export type { ConnectionLogEntry, EgressSummary } from "./proxy";
export { relayProblem } from "./relay";

export interface JobEgress {
  proxyPort: number;
  dnsPort: number;
  proxy: JobProxy;
  dnsLog: DnsLogEntry[];
  /** Stops both and returns the connection log's summary. */
  stop(): Promise<EgressSummary>;
}

/** Resolver decisions kept per job (not signed: the proxy's log is what a result carries). */
const MAX_DNS_LOG = 1024;

export async function startJobEgress(opts: {
  jobId: string;
  rules: readonly EgressRule[];
  network: SigilConfig["network"];
  /** The address the proxy and resolver listen on (the job network's gateway). */
  bindHost: string;
  hostAddresses: readonly string[];
  deniedEndpoints?: readonly { address: string; port: number }[];
  onLog?: (e: ConnectionLogEntry) => void;
}): Promise<JobEgress> {
  const settings = egressSettings(opts.network.allow_cidrs, opts.network.deny_cidrs);
  const resolve = (name: string) => resolveName(name, opts.network.resolvers);
  const proxy = new JobProxy({
    jobId: opts.jobId,
    rules: opts.rules,
    settings,
    limits: {
      connectionsPerSecond: opts.network.connections_per_second,
      maxBytes: opts.network.max_bytes,
      maxConnections: opts.network.max_connections,
    },
    hostAddresses: opts.hostAddresses,
    ...(opts.deniedEndpoints ? { deniedEndpoints: opts.deniedEndpoints } : {}),
    resolve,
    ...(opts.onLog ? { onLog: opts.onLog } : {}),
    ...(opts.network.relay !== "auto" ? { relay: opts.network.relay } : {}),
  });
  const proxyPort = await proxy.listen(opts.bindHost);
  const dnsLog: DnsLogEntry[] = [];
  const ports = [...new Set(opts.rules.flatMap((r) => r.ports))];
  let dns: Awaited<ReturnType<typeof startFilteringDns>>;
  try {
    dns = await startFilteringDns({
      host: opts.bindHost,
      allowed: (name) => nameAllowed(opts.rules, name),
      resolve,
      // The job learns only addresses the proxy would connect to for one of its rules' ports.
      admit: (a) => ports.some((p) => checkDestination(a, p, settings, opts.hostAddresses).ok),
      // Kept for diagnosis, bounded: the questions themselves are bounded only by the job's run.
      log: (e) => {
        if (dnsLog.length < MAX_DNS_LOG) dnsLog.push(e);
      },
      // An A and an AAAA question for each connection the job may open (docs/sandbox.md).
      questionsPerSecond: 2 * opts.network.connections_per_second,
    });
  } catch (e) {
    await proxy.close();
    throw e;
  }
  return {
    proxyPort,
    dnsPort: dns.port,
    proxy,
    dnsLog,
    stop: async () => {
      await Promise.all([proxy.close(), dns.close()]);
      return proxy.summary();
    },
  };
}
