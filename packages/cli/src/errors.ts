/**
 * An expected failure: the top-level catch prints `message` on one line (no stack) and
 * exits with `exitCode`. 2 = usage (bad flag or value), 1 = the command failed,
 * 3 = `hivemind import` found no session files.
 */
export class ExitError extends Error {
  readonly exitCode: number
  /** A second line telling the user how to fix it, when we know. */
  readonly hint: string | undefined

  constructor(exitCode: number, message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = this.constructor.name
    this.exitCode = exitCode
    this.hint = options?.hint
  }
}

/** A bad flag, value or combination: exit 2, naming the problem. */
export class UsageError extends ExitError {
  constructor(message: string, options?: { hint?: string }) {
    super(EXIT.usage, message, options)
  }
}

/** A bug: printed with "internal error" (and the stack under DEBUG=1), exit 70. */
export class InternalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = this.constructor.name
  }
}

/** Exit codes of the `hivemind` CLI. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  nothingFound: 3,
  internal: 70,
} as const
