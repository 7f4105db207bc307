// Quarantine (docs/incidents.md "Quarantine"): the contract incident response calls, records,
// the store port with its in-memory adapter, and the service over it.
export * from "./cache";
export * from "./memory";
export * from "./ports";
export * from "./record";
export * from "./service";
export * from "./types";
