// Loaded with `node --import` before the API in the http bench's "metrics and traces" row: an
// OpenTelemetry SDK as a deployment would register one (tracer provider, batch processor, W3C
// propagator, AsyncLocalStorage context manager), exporting to nowhere, so the bench measures the
// cost of recording spans on the hot path and not an exporter's network.
import type { ExportResult } from "@opentelemetry/core";
import { BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { installTracing } from "../support/otel";

const discard: SpanExporter = {
  export: (_spans, done: (r: ExportResult) => void) => done({ code: 0 }),
  shutdown: async () => {},
};
installTracing(() => new BatchSpanProcessor(discard));
