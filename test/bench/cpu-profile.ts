// Loaded with `node --import` into a bench's API process: samples its CPU with the V8 profiler and
// writes the profile to `$SIGIL_BENCH_PROFILE_DIR/<pid>.cpuprofile` when the process is told to
// stop (SIGTERM, before its own shutdown handler). The http bench reads it to attribute the
// server's CPU to the code that spent it: on a shared 2-core machine a share of one process's own
// samples is a steadier figure than a throughput ratio between processes.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";

const dir = process.env.SIGIL_BENCH_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  // 250 µs: enough samples in a few seconds of load for a 1 % share to be tens of samples.
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 250 });
  session.post("Profiler.start");
  process.prependOnceListener("SIGTERM", () => {
    // A same-thread inspector session answers synchronously, so the file is written before the
    // API's own SIGTERM handler runs.
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
