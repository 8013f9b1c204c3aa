// Real processes on loopback for the CLI's end-to-end tests: the server from source in
// its own process (client and server never import each other), the CLI as a child
// process, and temp homes populated from test/fixtures/.
import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const TSX_LOADER = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href
const TSCONFIG = join(ROOT, 'tsconfig.json')
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))
export const ADMIN_KEY = 'cli-test-admin-key-0123456789abcdef'
const SECRET_KEY = 'cli-test-secret-key-0123456789abcdef0123456789'

/**
 * Node with tsx's loader in the same process (not the tsx CLI, whose wrapper process
 * would not pass SIGKILL on), and the root tsconfig, so `@hivemind/*` resolve to their
 * sources: no build needed.
 */
function tsxArgs(entry: string, args: readonly string[]): string[] {
  return ['--import', TSX_LOADER, join(ROOT, entry), ...args]
}
const TSX_ENV = { TSX_TSCONFIG_PATH: TSCONFIG }

export interface ServerProcess {
  url: string
  dataDir: string
  child: ChildProcess
  output(): string
  kill(signal?: NodeJS.Signals): Promise<void>
}

/**
 * `hivemind-server serve` from source on 127.0.0.1:0 with a PGlite dir (reused if given;
 * `extraEnv` can point it at PostgreSQL with DATABASE_URL instead).
 */
export async function startServer(
  dataDir?: string,
  extraEnv: Record<string, string> = {},
): Promise<ServerProcess> {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'hivemind-cli-server-')))
  const child = spawn(process.execPath, tsxArgs('packages/server/src/main.ts', ['serve']), {
    cwd: ROOT,
    env: {
      ...TSX_ENV,
      PATH: process.env.PATH ?? '',
      HOME: dir,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      HIVEMIND_HOST: '127.0.0.1',
      HIVEMIND_PORT: '0',
      HIVEMIND_DATA_DIR: join(dir, 'data'),
      HIVEMIND_SECRET_KEY: SECRET_KEY,
      ADMIN_API_KEY: ADMIN_KEY,
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 45_000)
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    }
    child.stdout.on('data', check)
    child.stderr.on('data', check)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${output}`))
    })
  })
  return {
    url,
    dataDir: dir,
    child,
    output: () => output,
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode != null || child.signalCode != null) return resolve()
        child.once('exit', () => resolve())
        child.kill(signal)
      }),
  }
}

/** POST to the admin API with the bootstrap admin key; returns the JSON answer. */
export async function adminPost(url: string, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

/** A new service account with these scopes; returns its id (`sa_…`). */
export async function createServiceAccount(
  url: string,
  scopes: ('read' | 'write')[],
): Promise<string> {
  const name = `cli-test-${scopes.join('-')}-${Math.random().toString(36).slice(2, 8)}`
  const { id } = (await adminPost(url, '/api/v1/service-accounts', { name, scopes })) as {
    id: string
  }
  return id
}

/** A service account with a static `hmsa_` token of the given scopes, via the admin API. */
export async function createToken(
  url: string,
  scopes: ('read' | 'write')[],
): Promise<{ token: string; serviceAccountId: string }> {
  const id = await createServiceAccount(url, scopes)
  const { token } = (await adminPost(url, `/api/v1/service-accounts/${id}/tokens`, {
    expires_in: '30d',
    scopes,
  })) as { token: string }
  return { token, serviceAccountId: id }
}

/**
 * A `User` created with the admin key, signed in (session cookie + `X-CSRF-Token`), who
 * mints a personal access token `hmpat_…` of the given scopes; returns it and the user id.
 */
export async function createUserPat(
  url: string,
  scopes: ('read' | 'write')[],
): Promise<{ token: string; userId: string }> {
  const suffix = Math.random().toString(36).slice(2, 8)
  const email = `cli-pat-${suffix}@example.com`
  const password = 'correct horse battery staple'
  const { id: userId } = (await adminPost(url, '/api/v1/users', {
    username: `cli-pat-${suffix}`,
    email,
    password,
    role: 'User',
  })) as { id: string }
  const login = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  })
  if (!login.ok) throw new Error(`POST /auth/login: ${login.status} ${await login.text()}`)
  const cookies = login.headers.getSetCookie().map((c) => c.split(';')[0])
  const csrf = cookies.find((c) => c.startsWith('hm_csrf='))?.slice('hm_csrf='.length)
  if (!csrf) throw new Error(`POST /auth/login set no hm_csrf cookie: ${cookies.join(', ')}`)
  const res = await fetch(`${url}/api/v1/tokens`, {
    method: 'POST',
    headers: {
      cookie: cookies.join('; '),
      'x-csrf-token': csrf,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ name: 'cli e2e', expires_in: '30d', scopes }),
  })
  if (!res.ok) throw new Error(`POST /api/v1/tokens: ${res.status} ${await res.text()}`)
  const { token } = (await res.json()) as { token: string }
  return { token, userId }
}

/** The fields of `GET /api/v1/sessions` items these tests look at. */
export interface StoredSession {
  session_key: string
  agent: string | null
  owner: { kind: string; id: string }
  event_count: number
}

/** Every session `owner` stored (all pages) with its event count, via the read API. */
export async function listSessions(
  url: string,
  token: string,
  owner: string,
): Promise<StoredSession[]> {
  const out: StoredSession[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
    const res = await fetch(`${url}/api/v1/sessions?limit=500&owner=${owner}${q}`, {
      headers: { authorization: `Bearer ${token}` },
    })
    if (!res.ok) throw new Error(`list sessions: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as { items: typeof out; next_cursor: string | null }
    out.push(...page.items)
    cursor = page.next_cursor
  } while (cursor)
  return out
}

/** A temp home: agent dirs under it, the fixtures copied in when `fixtures` is true. */
export interface TempHome {
  root: string
  /** The environment the CLI sees: agent homes inside `root`, no ambient credentials. */
  env: Record<string, string>
  claudeDir: string
  codexDir: string
  stateDir: string
  /** Working directory for the CLI (not a git repository unless a test makes it one). */
  cwd: string
  remove(): Promise<void>
}

export async function tempHome(options: { fixtures: boolean }): Promise<TempHome> {
  const root = await mkdtemp(join(tmpdir(), 'hivemind-cli-home-'))
  const claudeDir = join(root, '.claude')
  const codexDir = join(root, '.codex')
  const copilotDir = join(root, '.copilot')
  const stateDir = join(root, '.hivemind')
  const cwd = join(root, 'work')
  await mkdir(cwd, { recursive: true })
  if (options.fixtures) {
    await cp(join(FIXTURES, 'claude-code'), claudeDir, { recursive: true })
    await cp(join(FIXTURES, 'codex'), codexDir, { recursive: true })
    await cp(join(FIXTURES, 'gemini-cli'), join(root, '.gemini'), { recursive: true })
    await cp(join(FIXTURES, 'copilot'), copilotDir, { recursive: true })
  }
  return {
    root,
    claudeDir,
    codexDir,
    stateDir,
    cwd,
    env: {
      HOME: root,
      CLAUDE_CONFIG_DIR: claudeDir,
      CODEX_HOME: codexDir,
      GEMINI_CLI_HOME: root,
      COPILOT_HOME: copilotDir,
      XDG_DATA_HOME: join(root, '.local', 'share'),
      CURSOR_HOME: join(root, '.cursor'),
      HIVEMIND_STATE_DIR: stateDir,
    },
    remove: () => rm(root, { recursive: true, force: true }),
  }
}

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliChild {
  child: ChildProcess
  done: Promise<CliRun>
}

/** Starts `hivemind <args>` from source as a child process with only the given env. */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
  cwd: string,
): CliChild {
  const child = spawn(process.execPath, tsxArgs('packages/cli/src/index.ts', args), {
    cwd,
    env: { ...TSX_ENV, PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
  return { child, done }
}

export function runCli(args: readonly string[], env: Record<string, string>, cwd: string) {
  return spawnCli(args, env, cwd).done
}
