// Names of the singleton Durable Objects (the others are named per keyid, domain or chain).
export const KEYS_OBJECT = "keys";
export const POLICIES_OBJECT = "policies";
export const APPROVALS_OBJECT = "approvals";
export const QUARANTINE_OBJECT = "quarantine";
export const INCIDENTS_OBJECT = "incidents";
export const REPORTS_OBJECT = "reports";
export const ARCHIVE_OBJECT = "archive";
