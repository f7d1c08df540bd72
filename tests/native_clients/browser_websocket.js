#!/usr/bin/env node
// Drives a real browser — Debian's Chromium, headless, through playwright-core — against
// spanpipe's WebSocket receiver, as a web page would use it, for tests/browser_websocket.rs.
//
// Usage: browser_websocket.js URL JSON_REQUEST PROTOBUF_REQUEST_BASE64 PAUSE_MS
//
// The page opens one WebSocket to URL and sends, back to back:
//   seq 1: a text message, "1\n" and JSON_REQUEST (OTLP/JSON);
//   seq 2: a binary message, seq 2 as 8 bytes big-endian and the OTLP protobuf request;
//   seq 3: a text message whose JSON is cut short (the server must answer it with an error and
//          keep the connection).
// It then keeps the connection idle for PAUSE_MS (long enough for the server to ping it several
// times: the browser answers pings itself, so a broken keepalive shows as a close), sends
//   seq 4: the JSON request again, as a text message,
// waits for the four acknowledgements and closes the connection normally (1000).
//
// Printed: {"acks": [ACK, ...], "close_code": N, "close_was_clean": B, "closed_early": B,
// "user_agent": "..."}: the acknowledgements as the page parsed them, in arrival order, and the
// close as the page saw it (`closed_early` when the server closed before the page did).
// Exits with status 1 on any failure to run the page.

'use strict';

const { chromium } = require('playwright-core');

const CHROMIUM = process.env.SPANPIPE_TEST_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 60000;

async function main() {
  const [url, jsonRequest, protobufBase64, pauseText] = process.argv.slice(2);
  if (!url || !jsonRequest || !protobufBase64 || !pauseText) {
    throw new Error('usage: browser_websocket.js URL JSON_REQUEST PROTOBUF_REQUEST_BASE64 PAUSE_MS');
  }
  const timer = setTimeout(() => {
    process.stderr.write(`the browser run took over ${DEADLINE_MS} ms\n`);
    process.exit(1);
  }, DEADLINE_MS);
  // --no-sandbox: the tests run as root in CI, where Chromium's sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const result = await page.evaluate(
      async ({ url, jsonRequest, protobufBase64, pause }) => {
        const protobuf = Uint8Array.from(atob(protobufBase64), (c) => c.charCodeAt(0));
        const socket = new WebSocket(url);
        socket.binaryType = 'arraybuffer';
        const acks = [];
        let closedByPage = false;
        let ackWaiter = null;
        const closed = new Promise((resolve) => {
          socket.onclose = (event) => resolve({ code: event.code, clean: event.wasClean, early: !closedByPage });
        });
        socket.onmessage = (event) => {
          acks.push(JSON.parse(event.data));
          if (ackWaiter && acks.length >= ackWaiter.count) ackWaiter.resolve();
        };
        const acknowledged = (count) =>
          new Promise((resolve) => {
            if (acks.length >= count) resolve();
            else ackWaiter = { count, resolve };
          });
        await new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = () => reject(new Error(`could not open ${url}`));
        });
        socket.send(`1\n${jsonRequest}`);
        const binary = new Uint8Array(8 + protobuf.length);
        new DataView(binary.buffer).setBigUint64(0, 2n);
        binary.set(protobuf, 8);
        socket.send(binary);
        socket.send(`3\n${jsonRequest.slice(0, jsonRequest.length / 2)}`);
        // Wait for the first three answers or an early close, whichever comes first.
        await Promise.race([acknowledged(3), closed]);
        await Promise.race([new Promise((resolve) => setTimeout(resolve, pause)), closed]);
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(`4\n${jsonRequest}`);
          await Promise.race([acknowledged(4), closed]);
        }
        if (socket.readyState === WebSocket.OPEN) {
          closedByPage = true;
          socket.close(1000, 'done');
        }
        const close = await closed;
        return { acks, close_code: close.code, close_was_clean: close.clean, closed_early: close.early };
      },
      { url, jsonRequest, protobufBase64, pause: Number(pauseText) },
    );
    result.user_agent = await page.evaluate(() => navigator.userAgent);
    process.stdout.write(JSON.stringify(result));
  } finally {
    await browser.close();
    clearTimeout(timer);
  }
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
