import type { Logger as SdkLogger } from '@hivemind/sdk'
import { pino, type Logger } from 'pino'
import { createStream } from 'rotating-file-stream'
import { basename, dirname } from 'node:path'

export type { Logger }

/**
 * The daemon's JSON log in the state dir, rotated at 10 MiB with 3 old files kept
 * (`daemon.log.1` …). Only messages, counts, paths and fingerprints are logged; the SDK
 * never hands a token to its logger.
 */
export function createDaemonLogger(logFile: string, level = 'info'): Logger {
  // Classic logrotate naming: daemon.log.1 is the newest old file.
  const stream = createStream(basename(logFile), {
    path: dirname(logFile),
    size: '10M',
    rotate: 3,
    mode: 0o600,
  })
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    stream,
  )
}

/** The SDK's `Logger` shape (message first) on top of pino (object first). */
export function sdkLogger(log: Logger): SdkLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, ...args: unknown[]) => {
      const extra = args[0]
      if (extra instanceof Error) log[level]({ err: { message: extra.message } }, message)
      else if (extra !== undefined && typeof extra === 'object') log[level](extra, message)
      else log[level](message)
    }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
