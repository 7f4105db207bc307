// Key management: the key registry port, the key provider port, encryption at rest and the manager
// that ties them to the rotation policy.
export * from "./at-rest";
export * from "./cache";
export * from "./manager";
export * from "./provider";
export * from "./record";
export * from "./registry";
