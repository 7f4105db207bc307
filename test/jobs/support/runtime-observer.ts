// Watches Docker for job containers (named sigil-job-<jobId>-<token> when a job takes them) and
// records the runtime each one really had, from `docker inspect`, not from what the driver says.
import Docker from "dockerode";

export interface RuntimeObserver {
  /** jobIds in the order their containers appeared. */
  created: string[];
  runtimeOf(jobId: string, timeoutMs?: number): Promise<string | undefined>;
  close(): void;
}

export async function observeJobRuntimes(docker = new Docker()): Promise<RuntimeObserver> {
  const runtimes = new Map<string, string>();
  const created: string[] = [];
  const stream = (await docker.getEvents({
    filters: { type: ["container"], event: ["create", "rename"] },
  })) as NodeJS.ReadableStream & { destroy(): void };
  let buf = "";
  stream.on("data", (chunk: Buffer) => {
    buf += chunk.toString("utf8");
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
      try {
        const ev = JSON.parse(line) as { Actor?: { ID?: string; Attributes?: { name?: string } } };
        const m = /^sigil-job-(.+)-[0-9a-f]{8}$/.exec(ev.Actor?.Attributes?.name ?? "");
        if (!m || !ev.Actor?.ID) continue;
        const jobId = m[1]!;
        created.push(jobId);
        docker
          .getContainer(ev.Actor.ID)
          .inspect()
          .then((info) => runtimes.set(jobId, info.HostConfig.Runtime ?? "unknown"))
          .catch(() => {});
      } catch {}
    }
  });
  return {
    created,
    async runtimeOf(jobId, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (!runtimes.has(jobId) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
      return runtimes.get(jobId);
    },
    close: () => stream.destroy(),
  };
}
