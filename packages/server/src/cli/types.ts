import type { CAC } from 'cac'

/** Where a command writes and what it reads; injectable for tests. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  /** Human-readable lines (stderr: stdout carries the JSON logs). */
  print(line: string): void
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal(): Promise<string>
}

/**
 * One `hivemind-server` sub-command: one file under `src/cli/`, listed in
 * `commands.ts`. `register` adds it to the cac instance; the action may throw
 * ExitError, ConfigError or StartupError, which `main` turns into one line.
 */
export interface CliCommand {
  register(cli: CAC, io: CliIo): void
}

/** Ends the process with `exitCode` after printing `message` as one line. */
export class ExitError extends Error {
  readonly code = 'ERR_EXIT'
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message)
    this.name = 'ExitError'
  }
}
