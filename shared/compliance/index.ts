// Compliance reports over the signed audit log (docs/compliance.md).
export * from "./checks";
export * from "./framework";
export * from "./html";
export * from "./report";
export * from "./store";
