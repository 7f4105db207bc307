// Approvals (docs/governance.md "Approvals"): records bound to the exact request, pure
// transitions, the store port with its in-memory adapter, and the workflow over it.
export * from "./memory";
export * from "./ports";
export * from "./record";
export * from "./service";
