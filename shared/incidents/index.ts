// Incident response (docs/incidents.md): detectors as data, the pure detection engine, incident
// records with forward-only states, the store port with its in-memory adapter, and the runner
// and responder over them.
export * from "./engine";
export * from "./evidence";
export * from "./memory";
export * from "./ports";
export * from "./record";
export * from "./responder";
export * from "./rules";
export * from "./runner";
