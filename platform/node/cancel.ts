// How a running job's cancel reaches its worker (docs/http-api.md "Cancel"): the API's cancel
// script publishes the job id on this channel, and marks the record, which the worker also reads
// before it starts a container (a published message is lost on a worker that was not
// subscribed). Both ends take the names from here so they cannot drift apart.

/** Pub/sub channel of cancelled running jobs for `[redis] prefix`. */
export const cancelChannel = (prefix: string): string => `${prefix}:jobs:cancel`;

/** The job record's hash (functions/node/jobs/redis-backend.ts keeps it under this name). */
export const jobRecordKey = (prefix: string, jobId: string): string => `${prefix}:job:{${jobId}}`;
