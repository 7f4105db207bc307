// RFC 9421 HTTP Message Signatures (Ed25519) + RFC 9530 Content-Digest + replay protection.
export {
  buildSignatureBase,
  componentValue,
  DERIVED_COMPONENTS,
  type HttpRequestParts,
  type NormalizedRequest,
  normalizeRequest,
  SignatureBaseError,
  serializeSignatureParams,
} from "./base";
export { type BodyInit, bodyBytes } from "./body";
export {
  createContentDigest,
  type DigestAlgorithm,
  type DigestCheck,
  verifyContentDigest,
} from "./digest";
export { parseSignatureFields, type SignatureEntry, serializeSignatureFields } from "./fields";
export type { ActiveKey, KeyLookup, KeyResolver, ReplayCache, Signer, VerifyFn } from "./ports";
export {
  MemoryReplayCache,
  type MemoryReplayCacheOptions,
  ReplayCacheFullError,
} from "./replay-memory";
export {
  defaultComponents,
  newNonce,
  type SignatureHeaders,
  type SignOptions,
  signRequest,
} from "./sign";
export {
  DEFAULT_MAX_SKEW_SECONDS,
  type VerifyError,
  type VerifyErrorCode,
  type VerifyOk,
  type VerifyOptions,
  type VerifyResult,
  verifyRequest,
} from "./verify";
