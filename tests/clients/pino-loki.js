// Sends a few lines to sluice with pino-loki (npm `pino-loki`), used one of two ways:
//   node pino-loki.js worker   pino.transport({target: 'pino-loki'}): the documented way, the
//                              transport runs in a worker thread; default batching (one request
//                              every 5 s, the rest sent when the transport closes).
//   node pino-loki.js direct   the transport stream used in-process with `batching: false`: one
//                              request per log line.
//
// What the client does (pino-loki 3.0.0, read from its source):
// - POSTs Loki JSON with fetch() to new URL(endpoint ?? 'loki/api/v1/push', host):
//   Content-Type application/json, no compression; `headers` option merged in (tenant here).
// - Labels: {level: <loki level name>, hostname: <pino's hostname>, ...labels option, ...props
//   named in propsToLabels}. Level names: 10/20 debug, 30 info, 40 warning, 50 error, 60 critical.
// - Line: JSON.stringify of the pino log object less `hostname` (level number, time, pid, fields,
//   msg).
// - Timestamp: the log's `time` (pino's epoch ms) scaled to ns (replaceTimestamp defaults to false).
// - Structured metadata: the object under `structuredMetaKey` (default "meta"), values stringified
//   (objects as JSON); the object stays in the line too.
// - Errors: printed with console.error (unless silenceErrors), never thrown. This program fails
//   when such a message appears: it wraps console.error (direct) or watches the worker's stderr,
//   which Node forwards to this process's stderr (worker).
//
// Environment: LOKI_URL (base URL of sluice), MANIFEST (where to write what the checker needs).
'use strict'

const path = require('path')
const fs = require('fs')
const os = require('os')
const { once } = require('events')
const { createRequire } = require('module')
const requireClient = createRequire(path.join(__dirname, 'node', 'package.json'))
const pino = requireClient('pino')

const mode = process.argv[2]
if (mode !== 'worker' && mode !== 'direct') {
  console.error('usage: pino-loki.js worker|direct')
  process.exit(2)
}
const caseName = `pino-loki-${mode}`
const errorOutput = []
const ERROR_MARK = /error when trying to send log to loki/i

// Watch what reaches stderr (the worker's console.error arrives here too).
const stderrWrite = process.stderr.write.bind(process.stderr)
process.stderr.write = (chunk, ...rest) => {
  if (ERROR_MARK.test(String(chunk))) errorOutput.push(String(chunk))
  return stderrWrite(chunk, ...rest)
}
const consoleError = console.error.bind(console)
console.error = (...args) => {
  if (args.some((a) => ERROR_MARK.test(String(a)))) errorOutput.push(args.map(String).join(' '))
  consoleError(...args)
}

async function main () {
  const tStart = BigInt(Date.now()) * 1000000n
  const options = {
    host: process.env.LOKI_URL,
    labels: { service_name: 'node-pino', test_case: caseName },
    headers: { 'X-Scope-OrgID': `tenant-pino-${mode}` },
    propsToLabels: ['component'],
    timeout: 10000
  }
  let transport
  if (mode === 'worker') {
    transport = pino.transport({ target: requireClient.resolve('pino-loki'), options })
  } else {
    const { pinoLoki } = requireClient('pino-loki')
    transport = pinoLoki({ ...options, batching: false })
  }
  const logger = pino({ level: 'debug' }, transport)

  logger.info(`${caseName}: first line`)
  logger.warn({ meta: { trace_id: 'abc123', attempt: 2, ctx: { a: 1 } } }, `${caseName}: with structured metadata`)
  logger.error({ component: 'billing', order: 7 }, `${caseName}: component label ✓`)
  logger.debug(`${caseName}: "quoted" and \\ backslash`)

  if (mode === 'worker') {
    // Ends the worker: pino-loki's close() sends the batch, then the worker exits and the stream
    // emits 'close'. pino unrefs the worker once it is ready, so a timer keeps this thread alive
    // meanwhile (and fails the run if the worker never finishes).
    const closed = once(transport, 'close')
    const guard = setTimeout(() => {
      stderrWrite('pino-loki: the transport did not close within 20 s\n')
      process.exit(1)
    }, 20000)
    transport.end()
    await closed
    clearTimeout(guard)
  } else {
    // batching: false sends each line with an unawaited fetch(); close() waits for none of them,
    // so wait for the stream to close and then for the event loop to drain (beforeExit).
    const closed = once(transport, 'close')
    transport.end()
    await closed
    await new Promise((resolve) => process.once('beforeExit', resolve))
  }
  const tEnd = BigInt(Date.now()) * 1000000n + 999999n
  // Give forwarded worker stderr a moment to arrive.
  await new Promise((resolve) => setTimeout(resolve, 50))

  fs.writeFileSync(process.env.MANIFEST, JSON.stringify({
    t_start_ns: tStart.toString(),
    t_end_ns: tEnd.toString(),
    pid: process.pid,
    hostname: os.hostname()
  }))
  if (errorOutput.length) {
    stderrWrite(`pino-loki reported ${errorOutput.length} error(s)\n`)
    process.exit(1)
  }
}

main().then(() => process.exit(0), (err) => {
  consoleError(err && err.stack ? err.stack : err)
  process.exit(1)
})
