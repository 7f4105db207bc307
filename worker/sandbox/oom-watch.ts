// Docker's `oom` events for this worker's containers: an independent signal beside the
// container's OOMKilled flag, which dockerd can leave unset when it handles the exit before the
// OOM event (seen under load with gVisor, where the whole sandbox is the OOM killer's victim).
import type Docker from "dockerode";
import { LABEL } from "./config";

const KEEP_MS = 10 * 60_000;

export class OomWatch {
  readonly #seen = new Map<string, number>();
  #stream: NodeJS.ReadableStream | undefined;
  #starting: Promise<void> | undefined;

  constructor(
    private readonly docker: Docker,
    private readonly workerId: string,
  ) {}

  /** Subscribes once; later calls reuse the subscription. A failure leaves the watch off. */
  start(): Promise<void> {
    this.#starting ??= this.docker
      .getEvents({
        filters: {
          type: ["container"],
          event: ["oom"],
          label: [`${LABEL.worker}=${this.workerId}`],
        },
      })
      .then((s) => {
        this.#stream = s as NodeJS.ReadableStream;
        // A watch must never keep a process alive on its own.
        (s as { socket?: { unref?: () => void } }).socket?.unref?.();
        let buf = "";
        s.on("data", (chunk: Buffer) => {
          buf += chunk.toString("utf8");
          for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              const id = (JSON.parse(line) as { Actor?: { ID?: string } }).Actor?.ID;
              if (id) this.#seen.set(id, Date.now());
            } catch {}
          }
          const old = Date.now() - KEEP_MS;
          for (const [id, at] of this.#seen) if (at < old) this.#seen.delete(id);
        });
        s.on("error", () => {});
      })
      .catch(() => {});
    return this.#starting;
  }

  /** Whether dockerd reported an OOM for the container, waiting up to waitMs for the event. */
  async saw(containerId: string, waitMs = 300): Promise<boolean> {
    const end = Date.now() + waitMs;
    while (!this.#seen.has(containerId) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 25));
    return this.#seen.has(containerId);
  }

  close(): void {
    (this.#stream as { destroy?: () => void } | undefined)?.destroy?.();
  }
}
