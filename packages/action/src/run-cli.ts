import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The bundled CLI next to this file (step/dist/hivemind.mjs). */
export const CLI = fileURLToPath(new URL('./hivemind.mjs', import.meta.url))

export interface CliResult {
  code: number
  /** The last stdout line parsed as JSON (the commands' `--json` output), if any. */
  json: unknown
  /** stderr without `::` workflow commands: the CLI's message and hint. */
  message: string
}

/**
 * Runs the bundled `hivemind` with the Node running this action (`process.execPath`,
 * the runner's node24), never whichever `node` is first on PATH. Workflow commands the
 * CLI prints (`::add-mask::`) go to this step's stdout, where the runner reads them.
 */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.once('error', reject)
    child.once('close', (code) => {
      const out: string[] = []
      const message: string[] = []
      for (const line of stderr.split('\n')) (line.startsWith('::') ? out : message).push(line)
      let json: unknown
      const text: string[] = []
      for (const line of stdout.split('\n')) {
        if (line.startsWith('::')) out.push(line)
        else if (line.trim().startsWith('{')) {
          try {
            json = JSON.parse(line)
          } catch {
            message.push(line)
          }
        } else if (line.trim()) text.push(line)
      }
      // Masks first: the runner hides a value only in lines after its `::add-mask::`.
      if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`)
      if (text.length > 0) process.stdout.write(`${text.join('\n')}\n`)
      resolve({ code: code ?? 1, json, message: message.join('\n').trim() })
    })
  })
}
