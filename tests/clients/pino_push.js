#!/usr/bin/env node
// Pushes log lines to a Loki push endpoint with the real pino-loki transport (JSON), for
// strata's black-box tests (installed into .peers/node by scripts/install-peers.sh; run with
// NODE_PATH=.peers/node/node_modules).
//
//   node pino_push.js --host http://127.0.0.1:PORT --lines N [--tenant T] [--app APP]
//
// Line i is pino's JSON object {"level":30,"time":...,"pid":...,"i":<i>,"meta":{...},
// "msg":"pino line <i>"}; pino-loki puts it in a stream {level="info", hostname=..., app=APP}
// with structured metadata {request_id: "req-<i>"} taken from the `meta` key. All lines are
// buffered and sent in one JSON push when the transport closes. pino-loki only prints a
// failed push, so console.error is watched: exit 1 if a push failed or did not finish in
// 20 s. Prints a JSON summary line on stdout.
'use strict'

const { once } = require('events')
const pino = require('pino')
const { pinoLoki } = require('pino-loki')

function parseArgs (argv) {
  const args = { lines: 10, app: 'pino-test', tenant: '' }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '')
    if (!(key in args) && key !== 'host') throw new Error(`unknown argument ${argv[i]}`)
    args[key] = argv[i + 1]
  }
  if (!args.host) throw new Error('--host is required')
  args.lines = Number(args.lines)
  return args
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const errors = []
  const printError = console.error
  console.error = (...parts) => {
    errors.push(parts.map(String).join(' '))
    printError(...parts)
  }
  const stream = pinoLoki({
    host: args.host,
    headers: args.tenant ? { 'X-Scope-OrgID': args.tenant } : {},
    labels: { app: args.app },
    // One push at close (the interval never fires before it).
    batching: { interval: 3600, maxBufferSize: 0 },
    timeout: 5000
  })
  const logger = pino({ level: 'info' }, stream)
  for (let i = 0; i < args.lines; i++) {
    logger.info({ i, meta: { request_id: `req-${i}` } }, `pino line ${i}`)
  }
  const closed = once(stream, 'close')
  stream.end()
  const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), 20000).unref())
  if ((await Promise.race([closed, timeout])) === 'timeout') {
    errors.push('push did not finish within 20000 ms')
  }
  console.log(JSON.stringify({ lines: args.lines, errors }))
  if (errors.length > 0) {
    printError('pino-loki push failed: ' + errors.join('; '))
    process.exit(1)
  }
  process.exit(0)
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(2)
})
