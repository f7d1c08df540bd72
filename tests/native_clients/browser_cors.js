#!/usr/bin/env node
// Drives OpenTelemetry's browser SDK in a real browser — Debian's Chromium, headless, through
// playwright-core — against spanpipe's OTLP/HTTP receiver on another origin, for
// tests/browser_cors.rs.
//
// Usage: browser_cors.js TRACES_URL WEBSOCKET_URL
//
// Bundles browser_cors_page.js with esbuild, serves it from a small HTTP server on 127.0.0.1,
// and loads it in three pages, each exporting two spans to TRACES_URL:
//   allowed_with_header: from http://127.0.0.1:PORT, with an `x-tenant` header (the browser asks
//                        with a preflight for content-type and x-tenant);
//   refused_origin:      the same from http://localhost:PORT, another origin;
//   allowed_plain:       from http://127.0.0.1:PORT, without extra headers (the preflight asks
//                        for content-type only).
// Each page also opens a WebSocket to WEBSOCKET_URL, whose receiver checks the page's origin.
//
// Printed: {"pages": {NAME: {"origin", "code", "error", "span_ids", "websocket_opened"}},
// "user_agent": "..."}.
// Exits with status 1 on any failure to run the pages.

'use strict';

const http = require('http');
const path = require('path');
const esbuild = require('esbuild');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.SPANPIPE_TEST_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 60000;
// How long a page's exporter tries. An allowed page's export must not run out of time on a busy
// CI machine (at 3 s, one did: the first page's preflight and export, beside a starting
// Chromium and other tests, took longer). The refused page's export fails, and the exporter
// retries it until this runs out, so it gets a short one.
const ALLOWED_EXPORT_MS = 20000;
const REFUSED_EXPORT_MS = 3000;

async function main() {
  const [tracesUrl, websocketUrl] = process.argv.slice(2);
  if (!tracesUrl || !websocketUrl) throw new Error('usage: browser_cors.js TRACES_URL WEBSOCKET_URL');
  const timer = setTimeout(() => {
    process.stderr.write(`the browser run took over ${DEADLINE_MS} ms\n`);
    process.exit(1);
  }, DEADLINE_MS);
  const built = await esbuild.build({
    entryPoints: [path.join(__dirname, 'browser_cors_page.js')],
    bundle: true,
    write: false,
    format: 'iife',
    logLevel: 'error',
  });
  const script = built.outputFiles[0].text;
  const server = http.createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(script);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>spanpipe CORS test</title><script src="/page.js"></script>');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  // --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const runs = {
      allowed_with_header: [`http://127.0.0.1:${port}`, { 'x-tenant': 'shop' }, ALLOWED_EXPORT_MS],
      refused_origin: [`http://localhost:${port}`, { 'x-tenant': 'shop' }, REFUSED_EXPORT_MS],
      allowed_plain: [`http://127.0.0.1:${port}`, undefined, ALLOWED_EXPORT_MS],
    };
    const pages = {};
    let userAgent = '';
    for (const [name, [origin, headers, timeoutMillis]] of Object.entries(runs)) {
      const page = await browser.newPage();
      await page.goto(`${origin}/`);
      userAgent = await page.evaluate(() => navigator.userAgent);
      const result = await page.evaluate((options) => window.exportSpans(options), {
        url: tracesUrl,
        headers,
        names: [`${name} 1`, `${name} 2`],
        timeoutMillis,
      });
      const websocketOpened = await page.evaluate((url) => window.openWebSocket(url), websocketUrl);
      pages[name] = { origin, ...result, websocket_opened: websocketOpened };
      await page.close();
    }
    process.stdout.write(JSON.stringify({ pages, user_agent: userAgent }));
  } finally {
    await browser.close();
    server.close();
    clearTimeout(timer);
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
