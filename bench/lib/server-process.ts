import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * Starts `bench-server.ts` in a child process (PGlite in memory, or `databaseUrl`),
 * with `env` as extra server environment. BENCH_SERVER_NODE_ARGS adds node flags
 * (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export function startBenchServer(
  options: { databaseUrl?: string | undefined; env?: Record<string, string> } = {},
): Promise<{ url: string; child: ChildProcess }> {
  const file = fileURLToPath(new URL('./bench-server.ts', import.meta.url))
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...extra, '--import', 'tsx', file], {
    env: {
      ...process.env,
      BENCH_DATABASE_URL: options.databaseUrl ?? '',
      BENCH_SERVER_ENV: JSON.stringify(options.env ?? {}),
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)))
    child.once('message', (m: { url: string }) => resolve({ url: m.url, child }))
  })
}

/** Asks the server to close and waits for it; a server that already died is fine. */
export function stopBenchServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit')
    if (child.exitCode != null || child.signalCode != null) return resolve()
    child.once('exit', () => resolve())
    child.send('stop')
  })
}

/** The p-th percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/**
 * Runs a bench file again as a child process (under tsx) with `flag=1` set, and waits
 * for it: the child is the load generator, so its event loop is not `bench/run.ts`'s.
 */
export function runAsChild(fileUrl: string, flag: string, name: string): Promise<void> {
  const file = fileURLToPath(fileUrl)
  const root = fileURLToPath(new URL('../..', import.meta.url))
  return new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, [flag]: '1' },
      stdio: 'inherit',
    })
    child.on('error', reject)
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${name} bench exited with ${code}`)),
    )
  })
}
