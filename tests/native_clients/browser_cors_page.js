// The web page of tests/browser_cors.rs, bundled for the browser by browser_cors.js with esbuild:
// OpenTelemetry's web tracer and its OTLP/HTTP exporter, as a web application ships them.
//
// window.exportSpans({url, headers, names, timeoutMillis}) records one span per name, exports
// them all with the OTLP/HTTP (JSON) exporter to `url` — sending `headers` with the request when
// given, and giving up after `timeoutMillis` — and resolves to {code, error, span_ids}: the
// exporter's result (0 success, 1 failure), its error if any, and the recorded spans' ids in hex.
//
// window.openWebSocket(url) opens a WebSocket to `url` and resolves to whether it opened (the
// server accepted the page's origin) before closing it again.

import { WebTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

window.exportSpans = ({ url, headers, names, timeoutMillis }) =>
  new Promise((resolve) => {
    const recorded = new InMemorySpanExporter();
    const provider = new WebTracerProvider({ spanProcessors: [new SimpleSpanProcessor(recorded)] });
    const tracer = provider.getTracer('spanpipe-cors-page');
    for (const name of names) tracer.startSpan(name).end();
    const spans = recorded.getFinishedSpans();
    const exporter = new OTLPTraceExporter({ url, headers, timeoutMillis });
    exporter.export(spans, (result) =>
      resolve({
        code: result.code,
        error: result.error ? String(result.error) : null,
        span_ids: spans.map((span) => span.spanContext().spanId),
      }),
    );
  });

window.openWebSocket = (url) =>
  new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.onopen = () => {
      socket.close(1000);
      resolve(true);
    };
    socket.onerror = () => resolve(false);
  });
