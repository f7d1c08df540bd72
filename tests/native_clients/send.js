#!/usr/bin/env node
// Sends one span set with the native (non-OpenTelemetry) Zipkin and Jaeger clients for Node.js —
// zipkin-js (`zipkin` with `zipkin-transport-http`) and Uber's `jaeger-client` — and prints, as
// JSON on standard output, each span as the client recorded it, so that
// tests/native_clients.rs can check what arrived through spanpipe against the OpenTelemetry
// specification's mapping of each protocol. These are the tracers older services still run;
// their traffic is not the OpenTelemetry exporters' (tests/otel_sdk/send_legacy.py).
//
// Usage:
//   send.js --target zipkin-v2=http://127.0.0.1:9411/api/v2/spans
//   send.js --target zipkin-v1=http://127.0.0.1:9411/api/v1/spans
//   send.js --target jaeger-agent=127.0.0.1:6832        (binary Thrift over UDP: the only
//                                                          encoding jaeger-client's thriftrw has)
//   send.js --target jaeger-collector=http://127.0.0.1:14268/api/traces
//
// Printed: {"targets": [{"target": "...", "service": "...", "process_tags": [...], "spans": [SPAN, ...]}]}:
// - Zipkin: SPAN is the client's own Zipkin v2 JSON of the span (whatever it sent, v1 or v2), so
//   ids, times, endpoints, annotations and tags are the client's;
// - Jaeger: SPAN holds ids in 16-digit hex, the operation name, start and duration in
//   microseconds as the client encodes them, tags and log fields as ordered [key, value] pairs
//   tagged with their type ({"string": s}, {"bool": b}, {"double": "text"}: the client sends
//   every JavaScript number as a double), and the span's references; `service` and
//   `process_tags` are the tracer's service name and process tags, typed alike (for Zipkin, "" and
//   none: its spans name their service).
//
// Exits with status 1, naming the target, when the client reported an error sending.

'use strict';

const zipkin = require('zipkin');
const { HttpLogger } = require('zipkin-transport-http');
const fetch = require('node-fetch');
const jaeger = require('jaeger-client');
const UDPSender = require('jaeger-client/dist/src/reporters/udp_sender').default;
const HTTPSender = require('jaeger-client/dist/src/reporters/http_sender').default;
const opentracing = require('opentracing');

// How long a client may take to report its spans.
const DEADLINE_MS = 30000;

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function targets() {
  const found = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] !== '--target' || args[i + 1] === undefined) fail(`usage: send.js --target KIND=WHERE ...`);
    const [kind, where] = args[i + 1].split(/=(.*)/s);
    found.push({ target: args[i + 1], kind, where });
  }
  return found;
}

// zipkin-js: a server span that calls a payment service (client span), with a local address,
// a remote one, tags, an `error` tag and a plain annotation (an event in OTLP).
async function sendZipkin({ kind, where }) {
  const version = kind === 'zipkin-v1' ? 'v1' : 'v2';
  const errors = [];
  const logger = new HttpLogger({
    endpoint: where,
    jsonEncoder: version === 'v1' ? zipkin.jsonEncoder.JSON_V1 : zipkin.jsonEncoder.JSON_V2,
    fetchImplementation: fetch,
    httpInterval: 60000,
    log: { error: (message) => errors.push(String(message)) },
  });
  const recorded = [];
  const recordingLogger = {
    logSpan(span) {
      recorded.push(JSON.parse(zipkin.jsonEncoder.JSON_V2.encode(span)));
      logger.logSpan(span);
    },
  };
  const recorder = new zipkin.BatchRecorder({ logger: recordingLogger });
  const tracer = new zipkin.Tracer({
    ctxImpl: new zipkin.ExplicitContext(),
    recorder,
    localServiceName: 'shop-frontend',
    traceId128Bit: true,
  });
  const { Annotation, InetAddress } = zipkin;
  tracer.scoped(() => {
    tracer.setId(tracer.createRootId());
    tracer.recordServiceName('shop-frontend');
    tracer.recordRpc('GET /checkout');
    tracer.recordAnnotation(new Annotation.ServerRecv());
    tracer.recordAnnotation(new Annotation.LocalAddr({ host: new InetAddress('10.0.0.7'), port: 8080 }));
    tracer.recordBinary('http.path', '/checkout');
    tracer.recordBinary('error', 'checkout failed');
    tracer.recordMessage('cache.miss');
    tracer.letId(tracer.createChildId(), () => {
      tracer.recordServiceName('shop-frontend');
      tracer.recordRpc('POST /pay');
      tracer.recordAnnotation(new Annotation.ClientSend());
      tracer.recordAnnotation(
        new Annotation.ServerAddr({ serviceName: 'payments', host: new InetAddress('10.0.0.9'), port: 9000 }),
      );
      tracer.recordBinary('http.status_code', '402');
      tracer.recordAnnotation(new Annotation.ClientRecv());
    });
    tracer.recordAnnotation(new Annotation.ServerSend());
  });
  await new Promise((resolve) => {
    logger.on('success', resolve);
    logger.on('error', (error) => {
      errors.push(String(error));
      resolve();
    });
    logger.processQueue(fetch);
  });
  if (errors.length > 0) fail(`${kind}: ${errors.join('; ')}`);
  if (recorded.length !== 2) fail(`${kind}: the client recorded ${recorded.length} spans, not 2`);
  return { spans: recorded };
}

function typed(value) {
  switch (typeof value) {
    case 'string':
      return { string: value };
    case 'boolean':
      return { bool: value };
    case 'number':
      return { double: String(value) };
    default:
      return { string: JSON.stringify(value) };
  }
}

const pairs = (entries) => entries.map(({ key, value }) => [key, typed(value)]);
const hex = (id) => (id ? Buffer.from(id).toString('hex') : '');

// jaeger-client: a server span with typed tags and two logs (one with an `event` field, one
// without), a client child with `error` and an error log, and a span that follows from the root.
async function sendJaeger({ kind, where }) {
  const errors = [];
  const logger = { info() {}, error: (message) => errors.push(String(message)) };
  let sender;
  if (kind === 'jaeger-agent') {
    const [host, port] = where.split(/:(?=[0-9]+$)/);
    sender = new UDPSender({ host, port: Number(port), logger });
  } else {
    sender = new HTTPSender({ endpoint: where, logger });
  }
  const memory = new jaeger.InMemoryReporter();
  const reporter = new jaeger.CompositeReporter([new jaeger.RemoteReporter(sender, { logger }), memory]);
  const tracer = new jaeger.Tracer('shop-checkout', reporter, new jaeger.ConstSampler(true), {
    tags: { 'deployment.environment': 'test', 'build.number': 42 },
    logger,
  });
  const root = tracer.startSpan('GET /checkout', {
    tags: { 'span.kind': 'server', 'http.method': 'GET', 'http.status_code': 200, retried: false, ratio: 0.25 },
  });
  root.log({ event: 'cache.miss', key: 'cart:7' });
  root.log({ message: 'stock reserved', items: 3 });
  const child = tracer.startSpan('POST /pay', {
    childOf: root,
    tags: { 'span.kind': 'client', 'peer.service': 'payments', 'peer.port': 9000 },
  });
  child.setTag('error', true);
  child.log({ event: 'error', 'error.object': 'Error: declined', message: 'card declined' });
  child.finish();
  const audit = tracer.startSpan('audit', { references: [opentracing.followsFrom(root.context())] });
  audit.finish();
  root.finish();
  await new Promise((resolve) => tracer.close(resolve));
  if (errors.length > 0) fail(`${kind}: ${errors.join('; ')}`);
  const spans = memory.spans.map((span) => {
    const context = span.context();
    return {
      trace_id: hex(context.traceId),
      span_id: hex(context.spanId),
      parent_span_id: hex(context.parentId),
      name: span.operationName,
      start_us: Math.round(span._startTime * 1000),
      duration_us: Math.round(span._duration * 1000),
      tags: pairs(span._tags),
      logs: span._logs.map((log) => ({ timestamp_us: Math.round(log.timestamp * 1000), fields: pairs(log.fields) })),
      references: span._references.map((reference) => ({
        type: reference.type(),
        trace_id: hex(reference.referencedContext().traceId),
        span_id: hex(reference.referencedContext().spanId),
      })),
    };
  });
  const processTags = Object.entries(tracer._tags).map(([key, value]) => [key, typed(value)]);
  return { service: tracer._serviceName, process_tags: processTags, spans };
}

async function main() {
  const timer = setTimeout(() => fail(`the clients took over ${DEADLINE_MS} ms`), DEADLINE_MS);
  const report = { targets: [] };
  for (const target of targets()) {
    const send = target.kind.startsWith('zipkin') ? sendZipkin : target.kind.startsWith('jaeger') ? sendJaeger : null;
    if (!send) fail(`unknown target kind \`${target.kind}\``);
    const sent = await send(target);
    report.targets.push({ target: target.target, service: sent.service || '', process_tags: sent.process_tags || [], spans: sent.spans });
  }
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(report));
  // Senders keep sockets and timers; nothing is left to send.
  process.exit(0);
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
