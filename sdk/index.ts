// Sigil client SDK (Web-standard). Node-only helpers live in ./node.

export type { ComplianceReport } from "../shared/compliance";
export type { Signer } from "../shared/httpsig";
/** What /v1/sign prefixes to a message before signing it (verify offline over prefix || message). */
export { HELD_SIGNATURE_CONTEXT, heldSignatureInput } from "../shared/keys/record";
export {
  type CallOptions,
  type FetchLike,
  Sigil,
  type SigilOptions,
  type StreamOptions,
} from "./client";
export { type ClientErrorCode, type Problem, ProblemSchema, SigilError } from "./errors";
export { signerFromSecretKey } from "./signer";
export { readServerSentEvents, type ServerSentEvent } from "./sse";
export type * from "./types";
