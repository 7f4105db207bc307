// Quotas and rate limits (docs/governance.md "Quotas, rate limits and fair scheduling"):
// token-bucket rules, the RateLimiter port and its in-memory adapter, and how a caller's limits are
// resolved.
export * from "./bucket";
export * from "./leasing";
export * from "./memory";
export * from "./ports";
export * from "./resolve";
