// `sigil approvals watch` and `sigil incidents watch` (docs/cli.md): follow a server-sent change
// feed, one line per change (one JSON object per line with --json). The server ends a stream after
// a few minutes: the watch reconnects with the last event's id, so nothing is missed or repeated.
// A stream the server ends because the key was revoked or quarantined throws (exit 1).
import type { ServerSentEvent, StreamOptions } from "../sdk";
import { type Io, intFlag } from "./output";

export const watchArgs = {
  count: { type: "string", description: "exit after this many events" },
  after: {
    type: "string",
    description: "start after this event id (a previous event's id), not at the newest change",
    valueHint: "id",
  },
} as const;

export async function watch(
  io: Io,
  args: { json: boolean; count?: string | undefined; after?: string | undefined },
  open: (call: StreamOptions) => AsyncIterable<ServerSentEvent>,
  line: (data: unknown) => string,
): Promise<void> {
  const count = intFlag("count", args.count, 1, 1_000_000);
  let last = args.after;
  let seen = 0;
  for (;;) {
    const opened = Date.now();
    let got = 0;
    for await (const e of open(last === undefined ? {} : { lastEventId: last })) {
      if (e.id !== undefined) last = e.id;
      got++;
      io.out(args.json ? JSON.stringify({ id: e.id, event: e.event, data: e.data }) : line(e.data));
      if (count !== undefined && ++seen >= count) return;
    }
    // A stream that ended at once and empty: do not hammer the API while reconnecting.
    if (got === 0 && Date.now() - opened < 1000) await new Promise((r) => setTimeout(r, 1000));
  }
}
