// TOFU pin store port. Pins are keyed `tool_id@domain`; a domain-wide pin (admin, no tool id)
// uses `*@domain`. Records are stored as canonical JSON strings and swapped atomically by
// comparing the whole stored string, so concurrent verifiers cannot overwrite each other.
import { z } from "zod";
import { canonicalJson } from "../encoding";
import { FINGERPRINT_RE, MAX_PEM_LENGTH } from "./keys";

export type PinStatus = "first_use" | "pinned";
export type PinSource = "observed" | "automatic" | "admin" | "confirmed";

export const pinRecordSchema = z.strictObject({
  domain: z.string().min(1).max(253),
  /** null: applies to every tool of the domain. */
  toolId: z.string().min(1).max(128).nullable(),
  status: z.enum(["first_use", "pinned"]),
  fingerprint: z.string().regex(FINGERPRINT_RE),
  publicKeyPem: z.string().max(MAX_PEM_LENGTH),
  algorithm: z.enum(["ES256", "Ed25519"]),
  source: z.enum(["observed", "automatic", "admin", "confirmed"]),
  firstSeenAt: z.number().int().nonnegative(),
  pinnedAt: z.number().int().nonnegative().nullable(),
  /** Only for first_use: when the unconfirmed observation lapses. */
  expiresAt: z.number().int().nonnegative().nullable(),
});
export type PinRecord = z.infer<typeof pinRecordSchema>;

export const DOMAIN_WIDE = "*";
export const pinField = (toolId: string | null): string => toolId ?? DOMAIN_WIDE;
export const pinKey = (toolId: string | null, domain: string): string =>
  `${pinField(toolId)}@${domain}`;

export const encodePinRecord = (r: PinRecord): string => canonicalJson(pinRecordSchema.parse(r));

/** Parses a stored record; a corrupt one is an error (fail closed), never "no pin". */
export function decodePinRecord(s: string): PinRecord {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw new Error("corrupt pin record: not JSON");
  }
  const parsed = pinRecordSchema.safeParse(v);
  if (!parsed.success) throw new Error("corrupt pin record: bad shape");
  return parsed.data;
}

/** Port. Implementations: MemoryPinStore (here), RedisPinStore (functions/node/stores). */
export interface PinStore {
  get(domain: string, toolId: string | null): Promise<PinRecord | null>;
  /** Every record of a domain (tool pins and the domain-wide pin). */
  list(domain: string): Promise<PinRecord[]>;
  /**
   * Atomically replaces `expected` (null: must be absent) with `next` (null: delete).
   * Returns false, changing nothing, if the stored record is not `expected`.
   */
  compareAndSwap(
    domain: string,
    toolId: string | null,
    expected: PinRecord | null,
    next: PinRecord | null,
  ): Promise<boolean>;
  /** Unconditional removal; true if something was removed. */
  delete(domain: string, toolId: string | null): Promise<boolean>;
}

export class MemoryPinStore implements PinStore {
  private readonly domains = new Map<string, Map<string, string>>();

  async get(domain: string, toolId: string | null): Promise<PinRecord | null> {
    const s = this.domains.get(domain)?.get(pinField(toolId));
    return s === undefined ? null : decodePinRecord(s);
  }

  async list(domain: string): Promise<PinRecord[]> {
    const m = this.domains.get(domain);
    if (!m) return [];
    return [...m.keys()].sort().map((k) => decodePinRecord(m.get(k)!));
  }

  async compareAndSwap(
    domain: string,
    toolId: string | null,
    expected: PinRecord | null,
    next: PinRecord | null,
  ): Promise<boolean> {
    const field = pinField(toolId);
    const nextStr = next === null ? null : encodePinRecord(next);
    const expectedStr = expected === null ? null : encodePinRecord(expected);
    const m = this.domains.get(domain);
    const cur = m?.get(field) ?? null;
    if (cur !== expectedStr) return false;
    if (nextStr === null) {
      m?.delete(field);
      if (m?.size === 0) this.domains.delete(domain);
    } else {
      const target = m ?? new Map<string, string>();
      target.set(field, nextStr);
      this.domains.set(domain, target);
    }
    return true;
  }

  async delete(domain: string, toolId: string | null): Promise<boolean> {
    const m = this.domains.get(domain);
    const removed = m?.delete(pinField(toolId)) ?? false;
    if (m?.size === 0) this.domains.delete(domain);
    return removed;
  }
}
