// The port behind Sigil's read-through caches (key records, the policy revision): a node announces
// what it changed and hears what others changed. Delivery is best effort (Redis pub/sub on Node),
// so each cache also bounds staleness with a TTL, and `onReset` (a subscriber that reconnected and
// may have missed messages) empties it.
export interface InvalidationBus {
  publish(id: string): Promise<void>;
  /** `onId(id)` for each announced change; `onReset()` whenever messages may have been missed. */
  subscribe(onId: (id: string) => void, onReset: () => void): void;
}
