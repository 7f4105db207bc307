// Quotas and rate limits (GOVERNANCE.md "Quotas, rate limits and fair scheduling"): token-bucket
// rules, the RateLimiter port and its in-memory adapter, and how a caller's limits are resolved.
export * from "./bucket";
export * from "./leasing";
export * from "./memory";
export * from "./ports";
export * from "./resolve";
