// Errors carry the server's RFC 9457 problem fields; client-side failures get a local type.
import { z } from "zod";

export const ProblemSchema = z.looseObject({
  type: z.string().default("about:blank"),
  title: z.string().default(""),
  status: z.number().int().optional(),
  detail: z.string().optional(),
  errors: z.array(z.unknown()).optional(),
});

export type Problem = z.infer<typeof ProblemSchema>;

/** Local (no HTTP status) failure kinds. */
export type ClientErrorCode = "timeout" | "network" | "aborted" | "no-key" | "invalid-response";

export class SigilError extends Error {
  override readonly name = "SigilError";
  readonly type: string;
  readonly title: string;
  /** HTTP status; 0 for failures that never got a response. */
  readonly status: number;
  readonly detail: string | undefined;
  readonly errors: readonly unknown[] | undefined;
  /** The stable suffix of `type`, e.g. "signature-invalid", or a ClientErrorCode. */
  readonly code: string;

  constructor(problem: Problem & { status: number }, options?: { cause?: unknown }) {
    super(
      problem.detail ? `${problem.title}: ${problem.detail}` : problem.title || problem.type,
      options,
    );
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.errors = problem.errors;
    this.code = problem.type
      .slice(problem.type.lastIndexOf("/") + 1)
      .replace(/^urn:sigil:client:/, "");
  }

  static client(code: ClientErrorCode, detail: string, cause?: unknown): SigilError {
    return new SigilError(
      { type: `urn:sigil:client:${code}`, title: code, status: 0, detail },
      cause === undefined ? undefined : { cause },
    );
  }
}

/** Builds a SigilError from an error response, whatever its body. */
export async function errorFromResponse(res: Response): Promise<SigilError> {
  const text = await res.text().catch(() => "");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const p = ProblemSchema.safeParse(parsed);
  if (p.success) return new SigilError({ ...p.data, status: p.data.status ?? res.status });
  return new SigilError({
    type: "about:blank",
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: text.slice(0, 500) || undefined,
  });
}
