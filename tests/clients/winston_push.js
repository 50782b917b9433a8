#!/usr/bin/env node
// Pushes log lines to a Loki push endpoint with the real winston-loki transport in its
// protobuf + snappy mode, for strata's black-box tests (installed into .peers/node by
// scripts/install-peers.sh; run with NODE_PATH=.peers/node/node_modules).
//
//   node winston_push.js --host http://127.0.0.1:PORT --lines N [--streams S]
//                        [--tenant T] [--job JOB]
//
// Line i is `winston line <i>` (exactly: a printf format keeps winston from appending its
// meta), at level info, with labels {level="info", job=JOB, shard="<i mod S>"}: S streams.
// winston-loki posts to HOST/loki/api/v1/push with X-Scope-OrgID: T when --tenant is given.
// Exits 1 if snappy could not be loaded (winston-loki would silently fall back to JSON), if
// any push failed, or if the lines were not all acknowledged within 20 s. Prints a JSON
// summary line on stdout.
'use strict'

const winston = require('winston')
const LokiTransport = require('winston-loki')

function parseArgs (argv) {
  const args = { lines: 10, streams: 1, job: 'winston-test', tenant: '' }
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '')
    if (!(key in args) && key !== 'host') throw new Error(`unknown argument ${argv[i]}`)
    args[key] = argv[i + 1]
  }
  if (!args.host) throw new Error('--host is required')
  args.lines = Number(args.lines)
  args.streams = Number(args.streams)
  return args
}

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  require('snappy') // fail loudly: without it winston-loki sends JSON instead
  const errors = []
  const transport = new LokiTransport({
    host: args.host,
    json: false,
    batching: true,
    interval: 0.2,
    gracefulShutdown: false,
    timeout: 5000,
    headers: args.tenant ? { 'X-Scope-OrgID': args.tenant } : {},
    format: winston.format.printf(info => info.message),
    onConnectionError: err => errors.push(String(err && err.message ? err.message : err))
  })
  if (transport.batcher.options.json !== false) throw new Error('winston-loki fell back to JSON')
  const logger = winston.createLogger({ level: 'info', transports: [transport] })
  for (let i = 0; i < args.lines; i++) {
    logger.info(`winston line ${i}`, { labels: { job: args.job, shard: String(i % args.streams) } })
  }
  // Let winston hand every line to the transport, then wait until the batcher has sent
  // them all (flush) or a send failed (failed batches are re-queued and retried after 60 s).
  await new Promise(resolve => setImmediate(resolve))
  const deadline = Date.now() + 20000
  let flushed = false
  const flush = transport.flush().then(() => { flushed = true })
  while (!flushed && errors.length === 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  if (!flushed && errors.length === 0) errors.push('lines not acknowledged within 20000 ms')
  flush.catch(() => {})
  await withTimeout(transport.close(), 5000, 'close').catch(e => errors.push(e.message))
  console.log(JSON.stringify({ lines: args.lines, streams: args.streams, errors }))
  if (errors.length > 0) {
    console.error('winston-loki push failed: ' + errors.join('; '))
    process.exit(1)
  }
  process.exit(0)
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : String(err))
  process.exit(2)
})
