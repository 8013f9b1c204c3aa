// hivemind/action end to end, run as a runner runs it: the committed bundle (step/dist)
// "downloaded" into `_actions/hivemind/action/<ref>/`, used from a workspace that is not
// this repository, against a real HiveMind server process, a real OIDC issuer and a
// runner-like ID-token endpoint. See runner.ts for what the mini runner emulates.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, lstatSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  startGitHubTokenEndpoint,
  startOidcIssuer,
  type GitHubTokenEndpoint,
  type LocalOidcIssuer,
} from '@hivemind/test-utils'
import {
  claudeFixtureLines,
  claudeLine,
  daemonPid,
  killDaemon,
  processRunning,
  sessionsBySource,
} from '../../cli/test/daemon-helpers.ts'
import {
  adminPost,
  createServiceAccount,
  createToken,
  startServer,
  type ServerProcess,
} from '../../cli/test/processes.ts'
import { MISSING_ID_TOKEN_MESSAGE, STATE } from '../src/messages.ts'
import {
  MiniRunner,
  REPO_ROOT,
  copyActionFiles,
  evaluateCondition,
  localActionMissing,
  parseFileCommand,
  parseWorkflowCommands,
  parseYamlSubset,
  type ActionDefinition,
  type JobResult,
  type JobStep,
  type PhaseResult,
} from './runner.ts'

/**
 * The tag the workflow uses: the one root action.yml pins its nested step to (the release
 * pins it to its own tag, scripts/pin-action-ref.ts), so both resolve to one download.
 */
const REF = nestedRef()
const ACTION = `hivemind/action@${REF}`
/** The nested step as root action.yml names it. */
const STEP_TITLE = `Run hivemind/action/step@${REF}`
const POST_TITLE = `Post Run hivemind/action/step@${REF}`

function nestedRef(): string {
  const def = parseYamlSubset(
    readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8'),
  ) as unknown as ActionDefinition
  const uses = def.runs.steps?.[0]?.uses ?? ''
  const m = /^hivemind\/action\/step@(v\d+\.\d+\.\d+)$/.exec(uses)
  if (!m) throw new Error(`root action.yml: unexpected nested uses ${JSON.stringify(uses)}`)
  return m[1]
}

// ---------------------------------------------------------------------------------------
// Services shared by the file

let server: ServerProcess
let issuer: LocalOidcIssuer
let reader: { token: string; serviceAccountId: string }

/** A GitHub repository whose jobs get ID tokens from a runner-like endpoint. */
interface GitHubRepo {
  repo: string
  serviceAccountId: string
  endpoint: GitHubTokenEndpoint
  /** Every ID token the endpoint minted, in order. */
  minted: string[]
}

const closers: (() => Promise<void>)[] = []
const roots: string[] = []

/**
 * A service account trusting `repo`'s GitHub ID tokens (github preset, the local issuer),
 * and a token endpoint minting them for that repository. `selector`/`policy` override
 * what the provider accepts (for the refusal cases).
 */
async function githubRepo(
  name: string,
  provider: { selector?: string; policy?: string } = {},
): Promise<GitHubRepo> {
  const repo = `octo-org/${name}-${randomUUID().slice(0, 8)}`
  const serviceAccountId = await createServiceAccount(server.url, ['write'])
  await adminPost(server.url, `/api/v1/service-accounts/${serviceAccountId}/identity-providers`, {
    preset: 'github',
    issuer: issuer.issuer,
    selector: provider.selector ?? `repo:${repo}`,
    ...(provider.policy ? { policy: provider.policy } : {}),
  })
  const minted: string[] = []
  const recording: LocalOidcIssuer = {
    ...issuer,
    mint: async (claims, options) => {
      const token = await issuer.mint(claims, options)
      minted.push(token)
      return token
    },
  }
  const endpoint = await startGitHubTokenEndpoint(recording, { repo })
  closers.push(() => endpoint.close())
  return { repo, serviceAccountId, endpoint, minted }
}

/** One job's machine: temp root, workspace (a git checkout, not this repo), homes, runner. */
interface Machine {
  root: string
  workspace: string
  home: string
  runnerTemp: string
  runner: MiniRunner
}

async function machine(options: { gh?: GitHubRepo; workspace?: string } = {}): Promise<Machine> {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'hm-action-e2e-')))
  roots.push(root)
  const repoName = options.gh?.repo ?? 'octo-org/octo-repo'
  const workspace = options.workspace ?? join(root, 'work', basename(repoName), basename(repoName))
  await mkdir(workspace, { recursive: true })
  if (!options.workspace) await promisify(execFile)('git', ['init', '-q'], { cwd: workspace })
  const home = join(root, 'home')
  const runnerTemp = join(root, 'runner-temp')
  await mkdir(home, { recursive: true })
  await mkdir(runnerTemp, { recursive: true })
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    CLAUDE_CONFIG_DIR: join(home, '.claude'),
    CODEX_HOME: join(home, '.codex'),
    GEMINI_CLI_HOME: home,
    COPILOT_HOME: join(home, '.copilot'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    CURSOR_HOME: join(home, '.cursor'),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: repoName,
    GITHUB_RUN_ID: '987654321',
    RUNNER_OS: 'Linux',
    RUNNER_TEMP: runnerTemp,
    ...(options.gh
      ? {
          ACTIONS_ID_TOKEN_REQUEST_URL: options.gh.endpoint.url,
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: options.gh.endpoint.requestToken,
        }
      : {}),
  }
  const runner = new MiniRunner({ root, workspace, runnerTemp, env })
  return { root, workspace, home, runnerTemp, runner }
}

/** State dirs the action created under RUNNER_TEMP (`hivemind-*`). */
function stateDirsUnder(runnerTemp: string): string[] {
  if (!existsSync(runnerTemp)) return []
  return readdirSync(runnerTemp)
    .filter((n) => n.startsWith('hivemind-'))
    .map((n) => join(runnerTemp, n))
}

// ---------------------------------------------------------------------------------------
// The fake agent: a child process writing Claude Code lines, one event each

const AGENT_SCRIPT = `
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const file = join(process.env.CLAUDE_CONFIG_DIR, 'projects', plan.project, plan.sid + '.jsonl')
mkdirSync(dirname(file), { recursive: true })
for (const [i, line] of plan.lines.entries()) {
  if (i > 0) await new Promise((r) => setTimeout(r, plan.delayMs))
  appendFileSync(file, line + '\\n')
}
console.log('agent: wrote ' + plan.lines.length + ' lines to ' + file)
// The last line was written right before exiting: only the post's catch-up can send it.
process.exit(plan.exitCode)
`

/** A job step running the fake agent: it writes `lines` to session `sid` and exits `exitCode`. */
async function agentStep(
  m: Machine,
  plan: { sid: string; lines: string[]; cwd: string; exitCode: number; delayMs?: number },
): Promise<JobStep> {
  const script = join(m.root, 'agent.mjs')
  if (!existsSync(script)) await writeFile(script, AGENT_SCRIPT)
  const planFile = join(m.root, `agent-${plan.sid}.json`)
  await writeFile(
    planFile,
    JSON.stringify({
      sid: plan.sid,
      lines: plan.lines,
      project: plan.cwd.replace(/[^A-Za-z0-9]/g, '-'),
      exitCode: plan.exitCode,
      delayMs: plan.delayMs ?? 60,
    }),
  )
  return {
    name: `agent ${plan.sid.slice(0, 8)}`,
    run: { command: process.execPath, args: [script, planFile] },
  }
}

/** `count` Claude Code text messages of session `sid` run in `cwd` (one event each). */
function agentLines(sid: string, count: number, cwd: string, label: string): string[] {
  return Array.from({ length: count }, (_, n) =>
    withCwd(claudeLine(sid, n, `${label} message ${n}`), cwd),
  )
}

function withCwd(line: string, cwd: string): string {
  const record = JSON.parse(line) as Record<string, unknown>
  if ('cwd' in record) record.cwd = cwd
  return JSON.stringify(record)
}

// ---------------------------------------------------------------------------------------
// The server's view

/** The verbatim source lines (`raw`) of a session's events on the server, in order. */
async function storedRaw(owner: string, sid: string): Promise<string[]> {
  const session = (await sessionsBySource(server.url, reader.token, owner)).get(sid)
  if (!session) return []
  const out: string[] = []
  let cursor: string | null = null
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
    const res = await fetch(
      `${server.url}/api/v1/sessions/${session.id}/events?limit=500&include_raw=true${q}`,
      { headers: { authorization: `Bearer ${reader.token}` } },
    )
    if (!res.ok) throw new Error(`list events: ${res.status} ${await res.text()}`)
    const page = (await res.json()) as {
      items: { raw?: string | null }[]
      next_cursor: string | null
    }
    out.push(...page.items.map((e) => e.raw ?? ''))
    cursor = page.next_cursor
  } while (cursor)
  return out
}

// ---------------------------------------------------------------------------------------
// Assertions on a job

function phase(job: JobResult, title: string, nth = 0): PhaseResult {
  const found = job.phases.filter((p) => p.title === title)[nth]
  if (!found) {
    throw new Error(
      `no phase ${title} #${nth}; phases: ${job.phases.map((p) => p.title).join(', ')}`,
    )
  }
  return found
}

/** A phase's exit code with its output, so a failed assertion shows what it printed. */
const exited = (p: PhaseResult) => ({ exit: p.exitCode, output: dump(p) })

/** Everything a phase printed, for failure messages. */
const dump = (p: PhaseResult) =>
  `${p.title} exit ${p.exitCode}\nstdout:\n${p.stdout}\nstderr:\n${p.stderr}`

/**
 * No secret in any step's output except in its own `::add-mask::` line, nor in any
 * GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE / GITHUB_PATH / step summary.
 */
function expectNoLeak(job: JobResult, secrets: readonly string[]): void {
  for (const p of job.phases) {
    const printed = `${p.stdout}\n${p.stderr}`
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('::add-mask::'))
      .join('\n')
    for (const s of secrets) {
      expect(s.length).toBeGreaterThan(10)
      expect(printed.includes(s), `${p.title} printed a secret`).toBe(false)
      for (const [name, content] of Object.entries(p.files)) {
        expect(content.includes(s), `${p.title}: a secret in its ${name} file`).toBe(false)
      }
    }
  }
  for (const s of secrets) expect(job.log.includes(s)).toBe(false)
}

const b64json = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>

/** Modes of a state dir: dirs 0700, regular files 0600, sockets without group/other bits. */
function modes(dir: string): { path: string; type: string; mode: string }[] {
  const out: { path: string; type: string; mode: string }[] = []
  const walk = (p: string) => {
    const st = lstatSync(p)
    const type = st.isDirectory()
      ? 'dir'
      : st.isFile()
        ? 'file'
        : st.isSocket()
          ? 'socket'
          : 'other'
    out.push({ path: p, type, mode: (st.mode & 0o777).toString(8) })
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n))
  }
  walk(dir)
  return out
}

/** Entries of a state dir that are not private: dirs 0700, files 0600, sockets no group/other bits. */
function notPrivate(dir: string): { path: string; type: string; mode: string }[] {
  const entries = modes(dir)
  if (!entries.some((e) => e.type === 'file')) throw new Error(`no files in ${dir}`)
  return entries.filter((e) =>
    e.type === 'dir'
      ? e.mode !== '700'
      : e.type === 'file'
        ? e.mode !== '600'
        : (Number.parseInt(e.mode, 8) & 0o077) !== 0,
  )
}

/**
 * The stream summary's counts for one session of `events` new events: what a reader
 * takes "N stored" to mean next to "M events uploaded" must hold (the server's
 * `accepted` counts the session record too; then the line must say "items").
 */
const COUNTS =
  /(\d+) sessions?, (\d+) events uploaded \((\d+) (items )?stored, (\d+) already there\); everything delivered\./
function expectCounts(summary: string, events: number): void {
  const m = COUNTS.exec(summary)
  expect(summary).toMatch(COUNTS)
  expect([m![1], m![2], m![5]]).toEqual(['1', String(events), '0'])
  // Soft: a wrong word here must not hide what the rest of the test checks.
  expect.soft(m![0]).toMatch(new RegExp(`\\((${events} stored|\\d+ items stored),`))
}

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  // The runner runs node24 actions with its own Node 24; the mini runner uses this one.
  if (!process.versions.node.startsWith('24.')) {
    throw new Error(
      `these tests must run on Node 24 (the runner's node24), not ${process.versions.node}`,
    )
  }
  if (!existsSync(join(REPO_ROOT, 'step', 'dist', 'main.mjs'))) {
    throw new Error('no step/dist/main.mjs: run `pnpm --filter @hivemind/action build`')
  }
  ;[server, issuer] = await Promise.all([startServer(), startOidcIssuer()])
  reader = await createToken(server.url, ['read'])
}, 90_000)

afterEach(async () => {
  // Daemons a failed test left behind (the posts stop them otherwise).
  for (const root of roots) {
    for (const dir of stateDirsUnder(join(root, 'runner-temp'))) killDaemon(dir)
  }
  for (const close of closers.splice(0)) await close()
  if (!process.env.KEEP_RUNNER_ROOTS) {
    await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })))
  } else console.log('runner roots kept:', roots.splice(0))
})

afterAll(async () => {
  await server?.kill()
  await issuer?.close()
})

const ACTION_FILES = [join(REPO_ROOT, 'action.yml'), join(REPO_ROOT, 'step', 'action.yml')]
const YAML_PATH = (() => {
  try {
    return createRequire(join(REPO_ROOT, 'test', 'package.json')).resolve('yaml')
  } catch {
    return undefined
  }
})()

describe('the mini runner itself', () => {
  it('parses both action.yml files; rejects YAML outside its subset', () => {
    for (const f of ACTION_FILES) {
      expect(parseYamlSubset(readFileSync(f, 'utf8'))).toMatchObject({
        runs: { using: expect.any(String) },
      })
    }
    expect(() => parseYamlSubset('a: [1, 2]')).toThrow(/unsupported/)
    expect(() => parseYamlSubset('a: |\n  x')).toThrow(/unsupported/)
    expect(() => parseYamlSubset('a: b: c')).toThrow(/cannot contain/)
  })

  // `yaml` is a dependency of the e2e package (test/) only; resolved from there.
  it.skipIf(YAML_PATH === undefined)(
    'parses both action.yml files exactly as the `yaml` package does',
    async () => {
      const yaml = (await import(YAML_PATH!)) as { parse(s: string): unknown }
      for (const f of ACTION_FILES) {
        const text = readFileSync(f, 'utf8')
        expect(parseYamlSubset(text)).toEqual(yaml.parse(text))
      }
    },
  )

  it('root action.yml forwards every input to the step and maps every step output', () => {
    const root = parseYamlSubset(
      readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8'),
    ) as unknown as ActionDefinition
    const step = parseYamlSubset(
      readFileSync(join(REPO_ROOT, 'step', 'action.yml'), 'utf8'),
    ) as unknown as ActionDefinition
    expect(root.runs.using).toBe('composite')
    expect(step.runs).toMatchObject({
      using: 'node24',
      main: 'dist/main.mjs',
      post: 'dist/post.mjs',
      'post-if': 'always()',
    })
    const [nested] = root.runs.steps ?? []
    expect(root.runs.steps).toHaveLength(1)
    expect(nested).toMatchObject({ id: 'hivemind', uses: `hivemind/action/step@${REF}` })
    const rootInputs = Object.keys(root.inputs ?? {})
    const stepInputs = Object.keys(step.inputs ?? {})
    expect(rootInputs).toEqual(stepInputs)
    expect(nested.with).toEqual(
      Object.fromEntries(rootInputs.map((k) => [k, `\${{ inputs.${k} }}`])),
    )
    // Same defaults on both sides (the step is only ever called through the composite).
    const defaults = (d: ActionDefinition) =>
      Object.fromEntries(
        Object.entries(d.inputs ?? {}).map(([k, v]) => [k, String(v?.default ?? '')]),
      )
    expect(defaults(step)).toEqual(defaults(root))
    expect(root.outputs).toEqual(
      Object.fromEntries(
        Object.keys(step.outputs ?? {}).map((k) => [
          k,
          { description: expect.any(String), value: `\${{ steps.hivemind.outputs.${k} }}` },
        ]),
      ),
    )
  })

  it("reads @actions/core's heredoc file commands, workflow commands and status conditions", () => {
    const d = 'ghadelimiter_1b0f4f7e-8c43-4b0e-a9b4-2f6f0b8f9a11'
    expect(parseFileCommand(`a<<${d}\nline 1\nline 2\n${d}\nb=x=y\nc<<EOF\n\nEOF\n`)).toEqual({
      a: 'line 1\nline 2',
      b: 'x=y',
      c: '',
    })
    expect(() => parseFileCommand(`a<<${d}\nno end\n`)).toThrow(/matching delimiter not found/)
    expect(
      parseWorkflowCommands(
        'x\n::add-mask::s3cr%25t\n::error file=a%3Ab,line=1::two%0Alines\n',
        'stdout',
      ),
    ).toEqual([
      { command: 'add-mask', properties: {}, data: 's3cr%t', stream: 'stdout' },
      {
        command: 'error',
        properties: { file: 'a:b', line: '1' },
        data: 'two\nlines',
        stream: 'stdout',
      },
    ])
    expect([
      evaluateCondition('always()', true),
      evaluateCondition('${{ success() }}', true),
    ]).toEqual([true, false])
    expect([evaluateCondition('failure()', true), evaluateCondition(undefined, false)]).toEqual([
      true,
      true,
    ])
  })

  it('finds and kills what a job leaves running, as the runner cleans up orphan processes', async () => {
    const m = await machine()
    const job = await m.runner.runJob([
      {
        name: 'leave a process behind',
        run: {
          command: process.execPath,
          args: [
            '-e',
            "require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { detached: true, stdio: 'ignore' }).unref()",
          ],
        },
      },
    ])
    expect(job.status).toBe('success')
    expect(job.orphans).toEqual([
      { pid: expect.any(Number), cmdline: expect.stringContaining('setTimeout') },
    ])
    await new Promise((r) => setTimeout(r, 200))
    expect(processRunning(job.orphans[0].pid)).toBe(false)
  })
})

describe('hivemind/action under a mini runner (real server, issuer and token endpoint)', () => {
  it('stream mode, the agent step fails: main exchanges after a Pending 403 and masks both tokens; the post delivers every line', async () => {
    const gh = await githubRepo('stream')
    gh.endpoint.failPendingTimes(1, 'Pending')
    const m = await machine({ gh })
    const sid = randomUUID()
    const lines = agentLines(sid, 6, m.workspace, 'stream')
    let afterMain: { requests: number; pid: number | undefined; running: boolean } | undefined
    const job = await m.runner.runJob(
      [
        { id: 'hivemind', uses: ACTION, with: { endpoint: server.url } },
        await agentStep(m, { sid, lines, cwd: m.workspace, exitCode: 1 }),
      ],
      {
        afterPhase: (p) => {
          if (p.kind !== 'main') return
          const pid = daemonPid(p.state[STATE.stateDir] ?? '/nonexistent')
          afterMain = {
            requests: gh.endpoint.requests.length,
            pid,
            running: pid !== undefined && processRunning(pid),
          }
        },
      },
    )
    expect(job.phases.map((p) => p.title)).toEqual([
      STEP_TITLE,
      `agent ${sid.slice(0, 8)}`,
      POST_TITLE,
    ])
    const main = phase(job, STEP_TITLE)
    expect(exited(main)).toMatchObject({ exit: 0 })
    expect(job.errors).toEqual([])
    expect(job.warnings).toEqual([])
    // Downloaded once: the composite's nested `hivemind/action/step@ref` is the same tag.
    expect(m.runner.downloads).toEqual([join(m.runner.actionsDir, 'hivemind', 'action', REF)])
    expect(main.actionDir).toBe(join(m.runner.actionsDir, 'hivemind', 'action', REF, 'step'))
    expect(main.processEnv).toMatchObject({
      INPUT_ENDPOINT: server.url,
      INPUT_MODE: 'stream',
      'INPUT_WATCH-PATHS': '',
      'INPUT_ALLOW-EMPTY': 'false',
    })

    // The first exchange happened in main: one 403 Pending, then a token.
    expect(afterMain).toMatchObject({ running: true })
    expect(afterMain!.requests).toBeGreaterThanOrEqual(2)
    // Every request but the Pending one minted a token.
    expect(gh.endpoint.requests.length).toBe(gh.minted.length + 1)
    for (const r of gh.endpoint.requests) {
      expect(r).toEqual({
        audience: server.url,
        authorization: `Bearer ${gh.endpoint.requestToken}`,
      })
    }
    expect(job.steps[0]).toMatchObject({
      id: 'hivemind',
      outcome: 'success',
      outputs: { 'service-account': gh.serviceAccountId },
    })

    // `::add-mask::` for the ID token the endpoint minted and for the server's JWT.
    const mainMasks = main.commands.filter((c) => c.command === 'add-mask').map((c) => c.data)
    const idToken = mainMasks.find((t) => gh.minted.includes(t))
    expect(idToken, `masks: ${mainMasks.length}`).toBeDefined()
    const jwt = mainMasks.find((t) => t !== idToken)
    expect(jwt).toBeDefined()
    const parts = jwt!.split('.')
    expect(parts).toHaveLength(3)
    expect(b64json(parts[1])).toMatchObject({ iss: server.url })
    expect(b64json(idToken!.split('.')[1])).toMatchObject({
      iss: issuer.issuer,
      aud: server.url,
      repository: gh.repo,
    })
    const me = await fetch(`${server.url}/api/v1/me`, {
      headers: { authorization: `Bearer ${jwt}` },
    })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ kind: 'service_account', id: gh.serviceAccountId })
    // Nothing exported: later steps see no token.
    expect(main.env).toEqual({})
    expect(main.outputs).toEqual({ 'service-account': gh.serviceAccountId })
    expect(main.state).toMatchObject({ [STATE.mode]: 'stream' })

    // The agent step failed, so the job did; the post ran anyway (post-if: always()).
    expect(job.steps[1]).toMatchObject({ outcome: 'failure' })
    expect(job.status).toBe('failure')
    const post = phase(job, POST_TITLE)
    expect(exited(post)).toMatchObject({ exit: 0 })
    expect(post.processEnv[`STATE_${STATE.stateDir}`]).toBe(main.state[STATE.stateDir])
    expect(post.stdout).toContain('everything delivered')
    expect(job.summary).toContain('<h3>HiveMind</h3>')
    expectCounts(job.summary, lines.length)
    expect(processRunning(afterMain!.pid!)).toBe(false)
    expect(job.orphans).toEqual([])
    expect(existsSync(join(main.state[STATE.stateDir], 'daemon.pid'))).toBe(false)

    // Every line the agent wrote, verbatim, once, under the service account.
    expect(await storedRaw(gh.serviceAccountId, sid)).toEqual(lines)
    expectNoLeak(job, [idToken!, jwt!, ...gh.minted, gh.endpoint.requestToken])
  }, 120_000)

  it.each<{
    name: string
    provider: { selector?: string; policy?: string }
    inputs?: Record<string, string>
    code: string
    hint: string
  }>([
    {
      name: 'a selector that does not match the repository',
      provider: { selector: 'repo:octo-org/someone-else-*' },
      code: 'no_matching_service_account',
      hint: 'No service account matches this token',
    },
    {
      name: 'a policy that denies the ref',
      provider: { policy: 'claims.ref == "refs/heads/release"' },
      code: 'policy_denied',
      hint: "The identity provider's CEL policy returned false",
    },
    {
      name: 'an `audience` input the server does not accept',
      provider: {},
      inputs: { audience: 'https://elsewhere.example' },
      code: 'audience_mismatch',
      hint: 'The server expects audience',
    },
  ])(
    'the first exchange fails the main step: $name',
    async ({ provider, inputs = {}, code, hint }) => {
      const gh = await githubRepo('refused', provider)
      const m = await machine({ gh })
      let requestsDuringMain = -1
      const job = await m.runner.runJob(
        [{ uses: ACTION, with: { endpoint: server.url, ...inputs } }],
        {
          afterPhase: (p) => {
            if (p.kind === 'main') requestsDuringMain = gh.endpoint.requests.length
          },
        },
      )
      const main = phase(job, STEP_TITLE)
      expect(exited(main)).toMatchObject({ exit: 1 })
      expect(requestsDuringMain).toBeGreaterThanOrEqual(1)
      expect(gh.endpoint.requests[0].audience).toBe(inputs.audience ?? server.url)
      expect(gh.minted.length).toBeGreaterThanOrEqual(1)
      const errors = main.commands.filter((c) => c.command === 'error').map((c) => c.data)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toContain(`(${code})`)
      expect(errors[0]).toContain(hint)
      expect(errors[0]).toMatch(
        /^hivemind: no credential: Token exchange failed with status 400 invalid_grant/,
      )
      expect(job.steps[0]).toMatchObject({ outcome: 'failure', outputs: { 'service-account': '' } })
      // No daemon survives; the post (always()) finds no state and does nothing.
      for (const dir of stateDirsUnder(m.runnerTemp)) expect(daemonPid(dir)).toBeUndefined()
      expect(job.orphans).toEqual([])
      const post = phase(job, POST_TITLE)
      expect(post).toMatchObject({ exitCode: 0, stdout: '', stderr: '', summary: '' })
      expectNoLeak(job, [...gh.minted, gh.endpoint.requestToken])
    },
    90_000,
  )

  it('no ACTIONS_ID_TOKEN_REQUEST_* and no token input: main fails with MISSING_ID_TOKEN_MESSAGE only', async () => {
    const m = await machine()
    const job = await m.runner.runJob([{ uses: ACTION, with: { endpoint: server.url } }])
    const main = phase(job, STEP_TITLE)
    expect(main.exitCode).toBe(1)
    expect(main.stdout).toBe(`::error::${MISSING_ID_TOKEN_MESSAGE}\n`)
    expect(main.stderr).toBe('')
    expect(job.errors).toEqual([MISSING_ID_TOKEN_MESSAGE])
    expect(stateDirsUnder(m.runnerTemp)).toEqual([])
    expect(phase(job, POST_TITLE)).toMatchObject({ exitCode: 0, stdout: '', stderr: '' })
  }, 60_000)

  it('import mode: the outputs match what the server stored; sessions outside the workspace are left out', async () => {
    const gh = await githubRepo('import')
    const m = await machine({ gh })
    const simple = randomUUID()
    const rich = randomUUID()
    const outside = randomUUID()
    const richLines = claudeFixtureLines(rich).map((l) => withCwd(l, m.workspace))
    const job = await m.runner.runJob([
      await agentStep(m, {
        sid: simple,
        lines: agentLines(simple, 4, m.workspace, 'import'),
        cwd: m.workspace,
        exitCode: 0,
        delayMs: 0,
      }),
      await agentStep(m, {
        sid: rich,
        lines: richLines,
        cwd: m.workspace,
        exitCode: 0,
        delayMs: 0,
      }),
      await agentStep(m, {
        sid: outside,
        lines: agentLines(outside, 3, '/srv/elsewhere', 'outside'),
        cwd: '/srv/elsewhere',
        exitCode: 0,
        delayMs: 0,
      }),
      { id: 'hm', uses: ACTION, with: { endpoint: server.url, mode: 'import' } },
    ])
    const main = phase(job, STEP_TITLE)
    expect(exited(main)).toMatchObject({ exit: 0 })
    expect(job.status).toBe('success')
    const outputs = job.steps[3].outputs
    const stored = await sessionsBySource(server.url, reader.token, gh.serviceAccountId)
    expect(outputs['service-account']).toBe(gh.serviceAccountId)
    expect([...stored.keys()].sort()).toEqual([simple, rich].sort())
    expect(outputs['sessions-uploaded']).toBe(String(stored.size))
    const events = [...stored.values()].reduce((n, s) => n + s.event_count, 0)
    expect(outputs['events-uploaded']).toBe(String(events))
    expect(stored.get(simple)!.event_count).toBe(4)
    const IMPORT_INFO =
      /HiveMind: 2 sessions in 2 files; (\d+) events sent \((\d+) (items )?stored, 0 already there\)/
    expect(main.stdout).toMatch(IMPORT_INFO)
    const info = IMPORT_INFO.exec(main.stdout)!
    expect(info[1]).toBe(String(events))
    // "stored" next to "events" must count events (or say it counts items, sessions too).
    expect.soft(info[0]).toMatch(new RegExp(`\\((${events} stored|\\d+ items stored),`))
    // The post of an import has nothing to stop.
    expect(phase(job, POST_TITLE)).toMatchObject({ exitCode: 0, stdout: '', summary: '' })
    expect(job.orphans).toEqual([])
    expectNoLeak(job, [...gh.minted, ...job.masks])
  }, 90_000)

  it('used twice in one job: two daemons in private state dirs; each post stops its own and delivers', async () => {
    const gh = await githubRepo('twice')
    const m = await machine({ gh })
    const [s1, s2] = [randomUUID(), randomUUID()]
    const [l1, l2] = [
      agentLines(s1, 4, m.workspace, 'first'),
      agentLines(s2, 5, m.workspace, 'second'),
    ]
    const mains: { stateDir: string; pid: number }[] = []
    const afterPosts: { stopped: string; first: boolean; second: boolean }[] = []
    let whileRunning: { running: boolean[]; notPrivate: unknown[] } | undefined
    const job = await m.runner.runJob(
      [
        { id: 'first', uses: ACTION, with: { endpoint: server.url } },
        await agentStep(m, { sid: s1, lines: l1, cwd: m.workspace, exitCode: 0 }),
        { id: 'second', uses: ACTION, with: { endpoint: server.url } },
        await agentStep(m, { sid: s2, lines: l2, cwd: m.workspace, exitCode: 0 }),
      ],
      {
        afterPhase: (p) => {
          if (p.kind === 'main') {
            const stateDir = p.state[STATE.stateDir]
            mains.push({ stateDir, pid: daemonPid(stateDir)! })
          }
          if (p.kind === 'run' && mains.length === 2) {
            whileRunning ??= {
              running: mains.map(({ pid }) => processRunning(pid)),
              notPrivate: mains.flatMap(({ stateDir }) => notPrivate(stateDir)),
            }
          }
          if (p.kind === 'post') {
            afterPosts.push({
              stopped: p.processEnv[`STATE_${STATE.stateDir}`],
              first: processRunning(mains[0].pid),
              second: processRunning(mains[1].pid),
            })
          }
        },
      },
    )
    expect(job.phases.filter((p) => p.kind === 'main').map((p) => p.exitCode)).toEqual([0, 0])
    // Both daemons were up at the same time, each with its own private state dir.
    expect(whileRunning).toEqual({ running: [true, true], notPrivate: [] })
    const [a, b] = mains
    expect(a.stateDir).not.toBe(b.stateDir)
    expect(a.pid).not.toBe(b.pid)
    expect(stateDirsUnder(m.runnerTemp).sort()).toEqual([a.stateDir, b.stateDir].sort())
    // Posts in reverse order: the second use's first, and it stops only its own daemon.
    expect(afterPosts).toEqual([
      { stopped: b.stateDir, first: true, second: false },
      { stopped: a.stateDir, first: false, second: false },
    ])
    expect(job.orphans).toEqual([])
    const posts = job.phases.filter((p) => p.kind === 'post')
    expect(posts.map((p) => p.exitCode)).toEqual([0, 0])
    expect(posts.map(exited)).toEqual([
      { exit: 0, output: expect.stringContaining('everything delivered') },
      { exit: 0, output: expect.stringContaining('everything delivered') },
    ])
    expect(job.summary.match(/everything delivered\./g)).toHaveLength(2)
    expect(job.steps.map((s) => s.outputs['service-account'])).toEqual([
      gh.serviceAccountId,
      undefined,
      gh.serviceAccountId,
      undefined,
    ])
    for (const dir of [a.stateDir, b.stateDir]) {
      expect(notPrivate(dir)).toEqual([])
      expect(existsSync(join(dir, 'daemon.pid'))).toBe(false)
    }
    expect(await storedRaw(gh.serviceAccountId, s1)).toEqual(l1)
    expect(await storedRaw(gh.serviceAccountId, s2)).toEqual(l2)
    expectNoLeak(job, [...gh.minted, ...job.masks])
  }, 150_000)

  it('a nested `uses: ./step` fails from another workspace (as on GitHub); the real action.yml works there', async () => {
    const gh = await githubRepo('nested')
    const m = await machine({ gh })
    const relative = async (dir: string) => {
      await copyActionFiles(dir)
      const file = join(dir, 'action.yml')
      const text = await readFile(file, 'utf8')
      const changed = text.replace(`uses: hivemind/action/step@${REF}`, 'uses: ./step')
      expect(changed).not.toBe(text)
      await writeFile(file, changed)
    }
    m.runner.publish('hivemind/action-relative', relative)
    const withInputs = { endpoint: server.url, mode: 'import', all: 'true', 'allow-empty': 'true' }

    const broken = await m.runner.runJob([
      { uses: `hivemind/action-relative@${REF}`, with: withInputs },
    ])
    expect(broken.status).toBe('failure')
    expect(broken.steps[0]).toMatchObject({
      outcome: 'failure',
      error: localActionMissing(join(m.workspace, 'step')),
    })
    // The step dir is right there in the downloaded action; `./` is the workspace's.
    expect(
      existsSync(
        join(m.runner.actionsDir, 'hivemind', 'action-relative', REF, 'step', 'action.yml'),
      ),
    ).toBe(true)
    expect(broken.phases).toEqual([])

    // From a checkout of the action itself (what a test inside this repository sees) the
    // same file resolves: only the other workspace catches it.
    const self = await machine({ gh, workspace: join(m.root, 'self-checkout') })
    await relative(self.workspace)
    self.runner.publish('hivemind/action-relative', relative)
    const fromSelf = await self.runner.runJob([
      { uses: `hivemind/action-relative@${REF}`, with: withInputs },
    ])
    expect({ ...fromSelf.steps[0], log: fromSelf.phases.map(dump) }).toMatchObject({
      outcome: 'success',
    })

    // The real action.yml from the other workspace: resolves, runs, uploads.
    const sid = randomUUID()
    const lines = agentLines(sid, 3, m.workspace, 'nested')
    const real = await m.runner.runJob([
      await agentStep(m, { sid, lines, cwd: m.workspace, exitCode: 0, delayMs: 0 }),
      { uses: ACTION, with: withInputs },
    ])
    expect({ status: real.status, log: real.phases.map(dump) }).toMatchObject({
      status: 'success',
    })
    expect(real.steps[1].outputs).toMatchObject({
      'service-account': gh.serviceAccountId,
      'sessions-uploaded': '1',
      'events-uploaded': '3',
    })
    expect(await storedRaw(gh.serviceAccountId, sid)).toEqual(lines)
  }, 90_000)

  it('the `token` input works without ACTIONS_ID_TOKEN_REQUEST_* and is masked; it never reaches the daemon as INPUT_TOKEN', async () => {
    const static_ = await createToken(server.url, ['write'])
    expect(static_.token).toMatch(/^hmsa_/)
    const m = await machine()
    const sid = randomUUID()
    const lines = agentLines(sid, 4, m.workspace, 'static')
    let daemonEnv: string[] = []
    const job = await m.runner.runJob(
      [
        { uses: ACTION, with: { endpoint: server.url, token: static_.token } },
        await agentStep(m, { sid, lines, cwd: m.workspace, exitCode: 0 }),
      ],
      {
        afterPhase: (p) => {
          if (p.kind !== 'main') return
          const pid = daemonPid(p.state[STATE.stateDir])
          daemonEnv = readFileSync(`/proc/${pid}/environ`, 'utf8')
            .split('\0')
            .map((kv) => kv.split('=')[0])
        },
      },
    )
    const main = phase(job, STEP_TITLE)
    expect(exited(main)).toMatchObject({ exit: 0 })
    expect(main.processEnv.ACTIONS_ID_TOKEN_REQUEST_URL).toBeUndefined()
    expect(main.processEnv.INPUT_TOKEN).toBe(static_.token)
    expect(job.steps[0].outputs['service-account']).toBe(static_.serviceAccountId)
    // Masked by the action (core.setSecret) before the CLI ran.
    expect(main.stdout.split('\n')[0]).toBe(`::add-mask::${static_.token}`)
    expect(job.masks).toContain(static_.token)
    expect(daemonEnv).toContain('HIVEMIND_TOKEN')
    expect(daemonEnv.filter((k) => k.startsWith('INPUT_'))).toEqual([])
    const post = phase(job, POST_TITLE)
    expect(exited(post)).toMatchObject({ exit: 0 })
    expect(job.summary).toMatch(new RegExp(`1 sessions?, ${lines.length} events uploaded \\(`))
    expect(job.orphans).toEqual([])
    expect(await storedRaw(static_.serviceAccountId, sid)).toEqual(lines)
    expectNoLeak(job, [static_.token])
  }, 90_000)
})
