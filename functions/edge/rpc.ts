// Errors across the Durable Object RPC boundary. workerd clones a thrown error's message but not
// its class or fields, and the ports promise typed errors (KeyRegistryError "not_active",
// AuditError "timeout", ...). So every DO method returns a Result and the adapter rethrows it as the
// same class with the same code: the behaviour the contract suites check, on every runtime.
import { AuditError, type AuditErrorCode } from "../../shared/audit";
import { CryptoError, type CryptoErrorCode } from "../../shared/crypto";
import { KeyRegistryError, type KeyRegistryErrorCode } from "../../shared/keys";
import { SubjectError, type SubjectErrorCode } from "../../shared/subjects";

export interface RpcError {
  name: string;
  code?: string;
  message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: RpcError };

/** Flattens a thrown value into a cloneable description that keeps its class name and code. */
export function describeError(e: unknown): RpcError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === "string" ? { code } : {}) };
  }
  return { name: "Error", message: String(e) };
}

/** Runs `fn` inside a DO method: its value, or its error as data. */
export async function capture<T>(fn: () => T | Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: describeError(e) };
  }
}

/** Rebuilds the error a DO reported, as the class the port's callers expect. */
export function rebuildError(e: RpcError): Error {
  switch (e.name) {
    case "KeyRegistryError":
      return new KeyRegistryError((e.code ?? "invalid") as KeyRegistryErrorCode, e.message);
    case "AuditError":
      return new AuditError((e.code ?? "unavailable") as AuditErrorCode, e.message);
    case "CryptoError":
      return new CryptoError((e.code ?? "invalid_input") as CryptoErrorCode, e.message);
    case "SubjectError":
      return new SubjectError((e.code ?? "inconsistent") as SubjectErrorCode, e.message);
    case "TypeError":
      return new TypeError(e.message);
    case "RangeError":
      return new RangeError(e.message);
    default: {
      const err = new Error(e.message);
      err.name = e.name;
      return err;
    }
  }
}

export function unwrap<T>(r: Result<T>): T {
  if (r.ok) return r.value;
  throw rebuildError(r.error);
}
