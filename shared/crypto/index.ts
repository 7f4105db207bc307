// Sigil's cryptographic core: the only module other parts import for signatures, keys and AEADs.
export {
  Aes256Gcm,
  aes256GcmDecrypt,
  aes256GcmEncrypt,
  generateAeadKey,
  xchacha20Poly1305Decrypt,
  xchacha20Poly1305Encrypt,
} from "./aead";
export {
  type ChannelOptions,
  type ChannelRole,
  MAX_CHANNEL_MESSAGES,
  SecureChannel,
} from "./channel";
export {
  assertEd25519,
  createReferenceSigner,
  createSigner,
  type Ed25519KeyPair,
  ed25519Pkcs8,
  ed25519PublicKeyFromSeed,
  ed25519StrictPrecheck,
  generateEd25519KeyPair,
  isValidEd25519PublicKey,
  nativeEd25519Available,
  type Signer,
  type VerifyFn,
  verifyEd25519,
  verifyEd25519Reference,
} from "./ed25519";
export { CryptoError, type CryptoErrorCode, randomBytes } from "./errors";
export {
  exportOkpJwk,
  importOkpJwk,
  type JsonWebKeyOkp,
  type OkpKey,
  publicJwk,
  publicKeyFromJwk,
} from "./jwk";
export { hkdfSha256, hmacSha256, verifyHmacSha256 } from "./kdf";
export { ed25519Kid, type OkpCurve, okpThumbprint, x25519Kid } from "./kid";
export { type OpenOptions, openSealed, type SealOptions, seal } from "./sealed";
export { idRandom16, uuidV7 } from "./uuid";
export {
  generateX25519KeyPair,
  type X25519KeyPair,
  x25519PublicKey,
  x25519SharedSecret,
} from "./x25519";
