// Sends a few lines to sluice with winston-loki (npm `winston-loki`), in one of its two wire
// formats: `node winston-loki.js protobuf` (the default: protobuf + snappy) or `... json`.
//
// What the client does (winston-loki 6.1.7, read from its source):
// - POSTs to `${host}/loki/api/v1/push` with Node's http module and a Content-Length.
//   Default: `logproto.PushRequest` (its own copy of Loki's proto: labels string + entries of
//   {timestamp, line}) compressed with the `snappy` package (an optional native dependency; if it
//   cannot be loaded the client silently falls back to JSON), `Content-Type: application/x-protobuf`,
//   no Content-Encoding. With `json: true`: Loki JSON, `Content-Type: application/json`.
// - Labels: `{level: <winston level>}` plus the `labels` option plus a call's `labels` meta. In
//   protobuf mode the label string is built by concatenation, `{level="info",k="v"}`, without
//   escaping values.
// - Line: `${message} ${JSON.stringify(rest)}` where rest is the info object less label, labels,
//   timestamp and message (so it always holds `level`), unless the transport has its own format.
// - Timestamp: Date.now() when the entry is queued (replaceTimestamp defaults to true); with
//   `replaceTimestamp: false`, the entry's `timestamp` meta (parsed by `new Date`) in ms.
//   Protobuf: {seconds, nanos}; JSON: ms + "000000" as a string.
// - Structured metadata: JSON mode only, `rest` with every value stringified (so `level` too);
//   protobuf mode sends none (its proto has no such field).
// - Batching: every `interval` seconds (default 5); `flush()` waits for in-flight requests,
//   `close()` sends the rest. Tenant via the `headers` option.
// - Errors: HTTP failures reach the `onConnectionError` callback (flush() and close() swallow
//   them); this program records them and exits 1.
//
// Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs).
'use strict'

const path = require('path')
const fs = require('fs')
const { createRequire } = require('module')
const requireClient = createRequire(path.join(__dirname, 'node', 'package.json'))
const winston = requireClient('winston')
const LokiTransport = requireClient('winston-loki')

async function main () {
  const mode = process.argv[2]
  if (mode !== 'protobuf' && mode !== 'json') throw new Error('usage: winston-loki.js protobuf|json')
  const caseName = `winston-loki-${mode}`
  const errors = []
  const tStart = BigInt(Date.now()) * 1000000n
  // Exact timestamps for the entries that carry one: whole ms, a little in the past.
  const base = Date.now() - 60000
  const fixed = [base + 1, base + 2]

  const transport = new LokiTransport({
    host: process.env.LOKI_URL,
    json: mode === 'json',
    labels: { app: 'node-winston', test_case: caseName },
    headers: { 'X-Scope-OrgID': `tenant-winston-${mode}` },
    interval: 0.2,
    replaceTimestamp: false,
    gracefulShutdown: false,
    timeout: 10000,
    onConnectionError: (err) => errors.push(err)
  })
  const logger = winston.createLogger({ level: 'debug', transports: [transport] })

  // Count the entries the transport has taken; each is in its batch when counted.
  let logged = 0
  transport.on('logged', () => { logged++ })

  logger.info(`${caseName}: first line`, { timestamp: new Date(fixed[0]).toISOString() })
  logger.warn(`${caseName}: with meta ✓`, { timestamp: new Date(fixed[1]).toISOString(), order: 7, user: 'ann' })
  logger.error(`${caseName}: extra labels, time from the client`, { labels: { component: 'billing' } })
  logger.debug(`${caseName}: "quoted" and \\ backslash`)

  const expected = 4
  const deadline = Date.now() + 10000
  while (logged < expected) {
    if (Date.now() > deadline) throw new Error(`only ${logged} of ${expected} entries reached the transport`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await transport.flush()
  await transport.close()
  const tEnd = BigInt(Date.now()) * 1000000n + 999999n

  fs.writeFileSync(process.env.MANIFEST, JSON.stringify({
    t_start_ns: tStart.toString(),
    t_end_ns: tEnd.toString(),
    fixed_ms: fixed
  }))
  if (errors.length) {
    for (const e of errors) console.error(`winston-loki reported an error: ${e && e.stack ? e.stack : e}`)
    process.exit(1)
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
