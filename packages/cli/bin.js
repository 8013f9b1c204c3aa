#!/usr/bin/env node
// The checkpoint store uses node:sqlite and Codex archives need built-in zstd: on an older
// Node say so in one line instead of an ERR_UNKNOWN_BUILTIN_MODULE stack trace.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(`hivemind: needs Node.js 24 or newer (this is ${process.version})\n`)
  process.exit(1)
}
// The healthcheck runs every 10 s under a 3 s timeout: its own small bundle.
await import(process.argv[2] === 'health' ? './dist/health.js' : './dist/index.js')
