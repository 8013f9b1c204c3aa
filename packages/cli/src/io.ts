/** What a command reads and writes; the bin passes the process's, tests their own. */
export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  cwd: string
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  now(): number
  /** Set by a command that finishes without throwing but wants another exit code. */
  exitCode: number
}
