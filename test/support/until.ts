// Waiting on a deployment under test for a state it reaches on its own (a job running, an incident
// mitigated): polled, with a bound, and failing with what was awaited. Tests never assert timings.

/** Polls `f` every 200 ms until it holds; fails naming `what` after `ms`. */
export async function until(what: string, f: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
