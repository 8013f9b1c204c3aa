#!/usr/bin/env node
import module from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
// The checkpoint store uses node:sqlite and Codex archives need built-in zstd: on an older
// Node say so in one line instead of an ERR_UNKNOWN_BUILTIN_MODULE stack trace.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  process.stderr.write(`hivemind: needs Node.js 24 or newer (this is ${process.version})\n`)
  process.exit(1)
}
// Node's on-disk compile cache: every start after the first skips most of parsing and
// compiling the bundle (a fifth of an import's fixed cost). It lives in the user's own cache
// dir, never the shared temp dir Node defaults to, where another local user could plant
// code for this process to run. An unwritable dir only leaves it off;
// NODE_COMPILE_CACHE / NODE_DISABLE_COMPILE_CACHE still decide when set.
const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), '.cache')
module.enableCompileCache?.(join(cacheHome, 'hivemind', 'node-compile-cache'))
// The healthcheck runs every 10 s under a 3 s timeout: its own small bundle.
await import(process.argv[2] === 'health' ? './dist/health.js' : './dist/index.js')
