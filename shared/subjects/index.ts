// Data subjects: personal data in audit events sealed per subject, export and erasure
// (docs/data-subjects.md).
export * from "./memory";
export * from "./ports";
export * from "./vault";
