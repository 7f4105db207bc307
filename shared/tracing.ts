// OpenTelemetry traces through the API only (docs/operating.md "Metrics and traces"): every call
// here is a no-op until the process registers an SDK (a tracer provider, and a context manager and
// propagator for the active context). The API package has no Node imports, so this runs on
// workerd too.
import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type TimeInput,
  TraceFlags,
  trace,
} from "@opentelemetry/api";

export type { Context, Span } from "@opentelemetry/api";

/** The tracer's name: the instrumentation scope every Sigil span is recorded under. */
export const TRACER_NAME = "sigil";

const tracer = () => trace.getTracer(TRACER_NAME);

/** W3C Trace Context `traceparent`, version 00 (https://www.w3.org/TR/trace-context/). */
export const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

function fail(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Runs `fn` in a child span of the active context (or of `parent`); ends it however `fn` ends. */
export async function inSpan<T>(
  name: string,
  fn: (span: Span) => Promise<T>,
  opts: { attributes?: Attributes; parent?: Context; startTime?: TimeInput } = {},
): Promise<T> {
  const span = tracer().startSpan(
    name,
    {
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
      ...(opts.startTime !== undefined ? { startTime: opts.startTime } : {}),
    },
    opts.parent ?? context.active(),
  );
  const ctx = trace.setSpan(opts.parent ?? context.active(), span);
  try {
    return await context.with(ctx, () => fn(span));
  } catch (e) {
    fail(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** A child span of the active context, for the caller to end. */
export function startSpan(name: string, attributes?: Attributes): Span {
  return tracer().startSpan(name, attributes ? { attributes } : {});
}

/** inSpan for synchronous work (a policy evaluation). */
export function inSpanSync<T>(name: string, fn: (span: Span) => T, attributes?: Attributes): T {
  const span = tracer().startSpan(name, attributes ? { attributes } : {});
  try {
    return context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (e) {
    fail(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** A span over an interval that already passed (queue wait: enqueued → taken). */
export function pastSpan(
  name: string,
  parent: Context,
  startTime: TimeInput,
  endTime: TimeInput,
  attributes?: Attributes,
): void {
  tracer()
    .startSpan(name, { startTime, ...(attributes ? { attributes } : {}) }, parent)
    .end(endTime);
}

/**
 * The active span's context as a `traceparent` value, or undefined when nothing is being
 * recorded (no SDK, or no span): the job envelope carries it only when there is a trace.
 */
export function currentTraceparent(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${sc.traceId}-${sc.spanId}-${flags}`;
}

/** `{ traceparent }` of the active span for a job envelope, or nothing when there is no trace. */
export function traceparentField(): { traceparent?: string } {
  const traceparent = currentTraceparent();
  return traceparent ? { traceparent } : {};
}

/**
 * A context whose remote parent is `traceparent` (from a signed envelope), or the root context
 * when it is absent or malformed: a bad value starts a new trace, never an error.
 */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  if (!traceparent || !TRACEPARENT.test(traceparent)) return ROOT_CONTEXT;
  const [, traceId, spanId, flags] = traceparent.split("-");
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: Number.parseInt(flags!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}
