// The few workerd types the edge adapters use, declared structurally so the repo's tsconfig (Node +
// DOM libs) needs no @cloudflare/workers-types (its globals would clash with the DOM lib).
export type SqlValue = ArrayBuffer | string | number | null;

export interface SqlCursor<T> extends Iterable<T> {
  toArray(): T[];
  one(): T;
  readonly rowsWritten: number;
}

export interface SqlStorage {
  exec<T extends Record<string, SqlValue> = Record<string, SqlValue>>(
    query: string,
    ...bindings: unknown[]
  ): SqlCursor<T>;
}

export interface DurableObjectStorage {
  readonly sql: SqlStorage;
  transactionSync<T>(fn: () => T): T;
  getAlarm(): Promise<number | null>;
  setAlarm(time: number | Date): Promise<void>;
}

export interface DurableObjectState {
  readonly storage: DurableObjectStorage;
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
}

export interface DurableObjectId {
  toString(): string;
}

/** What calling an RPC method on a stub looks like: always a promise of the (cloned) result. */
export type Stub<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => Promise<Awaited<R>>
    : never;
};

export interface DurableObjectNamespace<T> {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): Stub<T>;
}

/** The stub for the object named `name` (one object per name, worldwide). */
export const stubFor = <T>(ns: DurableObjectNamespace<T>, name: string): Stub<T> =>
  ns.get(ns.idFromName(name));

/**
 * Makes a stub when called. workerd binds a stub to the request that created it ("Cannot perform
 * I/O on behalf of a different request"), so adapters that live as long as the isolate must not
 * keep one: they take a source and make a stub per call (cheap: no I/O until a method is called).
 */
export type StubSource<T> = () => Stub<T>;

export const stubSource =
  <T>(ns: DurableObjectNamespace<T>, name: string): StubSource<T> =>
  () =>
    stubFor(ns, name);
