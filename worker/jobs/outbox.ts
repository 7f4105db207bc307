// Signed results waiting for the API's acknowledgement, one file per job in the data dir. A result
// is written (fsync'd) before the first report attempt and deleted only once the API accepted it,
// so a crash or an unreachable API retries the report, never the execution.
import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

import type { ConnectionLogEntry } from "../../shared/jobs/egress";

export interface ResultReport {
  type: "result";
  attempt: number;
  signed: unknown;
  stdout: string;
  stderr: string;
  /** sha256 of the queue lock token of the attempt that produced it (see consumer.ts). */
  lockHash?: string;
  /** The job's connection log, whose digest the signed result carries (docs/sandbox.md). */
  egressLog?: ConnectionLogEntry[];
}

export interface PendingReport {
  jobId: string;
  report: ResultReport;
}

const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

export class Outbox {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await mkdir(join(this.dir, "dead"), { recursive: true, mode: 0o700 });
  }

  #file(jobId: string): string {
    if (!SAFE_ID.test(jobId)) throw new RangeError("unsafe job id for a file name");
    return join(this.dir, `${jobId}.json`);
  }

  async put(p: PendingReport): Promise<void> {
    const path = this.#file(p.jobId);
    const tmp = `${path}.${process.pid}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(JSON.stringify(p));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }

  async get(jobId: string): Promise<PendingReport | undefined> {
    if (!SAFE_ID.test(jobId)) return undefined;
    try {
      return JSON.parse(await readFile(this.#file(jobId), "utf8")) as PendingReport;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async ack(jobId: string): Promise<void> {
    await unlink(this.#file(jobId)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
  }

  /** The API refused it for good (4xx): kept aside for the operator, not retried. */
  async bury(jobId: string): Promise<void> {
    await rename(this.#file(jobId), join(this.dir, "dead", `${jobId}.json`)).catch(() => undefined);
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5));
  }
}
