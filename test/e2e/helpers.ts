import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const SERVER_BIN = join(ROOT, 'packages/server/bin/hivemind-server.js')

/** The server bin runs its bundle: `pnpm test` builds first; a lone vitest run must too. */
export function assertBuilt(): void {
  if (!existsSync(join(ROOT, 'packages/server/dist/main.js'))) {
    throw new Error('packages/server is not built: run `npx -y pnpm@10 run build` first')
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

export interface RunningServer {
  url: string
  child: ChildProcess
  output: () => string
  stop(): Promise<void>
}

/** Starts the real `hivemind-server serve` process and waits for its listening line. */
export async function startServerProcess(env: Record<string, string>): Promise<RunningServer> {
  const child = spawn(process.execPath, [SERVER_BIN, 'serve'], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000)
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })
  return {
    url,
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode != null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

/**
 * A token directory laid out the way the kubelet projects one: `token` → `..data/token`,
 * `..data` → `..<timestamp>`; a rotation swaps `..data` atomically with rename(2).
 */
export function kubeletTokenDir(dir: string) {
  let generation = 0
  const write = async (token: string) => {
    const stamp = `..2026_11_26_${String(++generation).padStart(2, '0')}`
    await mkdir(join(dir, stamp), { recursive: true })
    await writeFile(join(dir, stamp, 'token'), `${token}\n`)
    await symlink(stamp, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    if (generation === 1) await symlink('..data/token', join(dir, 'token'))
  }
  return { path: join(dir, 'token'), write }
}

/** Reads one counter sample from the server's Prometheus text. */
export async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  return line ? Number(line.split(' ').pop()) : 0
}
