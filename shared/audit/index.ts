// The audit trail: hash chain + RFC 9162 Merkle tree + signed checkpoints (docs/audit.md).
export * from "./event";
export * from "./export";
export * from "./jwks";
export * from "./memory";
export * from "./merkle";
export * from "./note";
export * from "./ports";
export * from "./retention";
export * from "./sequencer";
export * from "./service";
export * from "./verify";
