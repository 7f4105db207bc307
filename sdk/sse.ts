// Minimal text/event-stream parser (WHATWG HTML §9.2) over a fetch body.

export interface ServerSentEvent {
  /** "message" when the server sent no `event:` field. */
  readonly event: string;
  /** Parsed JSON when the data is JSON, otherwise the raw string. */
  readonly data: unknown;
  readonly id: string | undefined;
}

function parseData(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent, void, undefined> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return; // An unterminated last event is discarded, as the spec says.
      buf += decoder.decode(value, { stream: true });
      let nl = buf.search(/\r\n|\r|\n/);
      // A trailing "\r" may be half of "\r\n": wait for the next chunk before splitting.
      while (nl >= 0 && !(nl === buf.length - 1 && buf[nl] === "\r")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length > 0)
            yield { event: event || "message", data: parseData(data.join("\n")), id };
          event = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
          else if (field === "id" && !val.includes("\0")) id = val;
        }
        nl = buf.search(/\r\n|\r|\n/);
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
