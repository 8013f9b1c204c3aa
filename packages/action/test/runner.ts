// A mini GitHub Actions runner for the action's end-to-end tests: it "downloads" the
// action from this working tree into `<root>/_actions/<owner>/<repo>/<ref>/` (as the
// runner does for `uses: owner/repo@ref`), resolves composite `uses:` the way the runner
// does (`./x` against GITHUB_WORKSPACE, never against the action), evaluates the
// `${{ inputs.* }}` / `${{ steps.*.outputs.* }}` expressions of action.yml, runs node
// actions' `main` with this Node (the tests run on Node 24, the runner's node24), reads
// the file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV, GITHUB_STEP_SUMMARY) with
// the runner's `name<<DELIMITER` format, and runs the `post` phases after the job's
// steps, in reverse order, under their `post-if`, with the saved state as `STATE_*`.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** This repository's root: what every tag of hivemind/action "contains" here. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Longest a single phase may run before the mini runner kills it. */
const PHASE_TIMEOUT_MS = 150_000

// ---------------------------------------------------------------------------------------
// A YAML subset: enough for action.yml files (block mappings and sequences, plain and
// quoted scalars, comments). `yaml` is not resolvable from packages/action (only from
// test/), so this parser throws on anything outside the subset rather than guess.

export type YamlValue = string | number | boolean | null | YamlValue[] | { [k: string]: YamlValue }

interface YamlLine {
  indent: number
  text: string
  no: number
}

export class YamlSubsetError extends Error {}

/** Parses the YAML subset action.yml files use; throws {@link YamlSubsetError} beyond it. */
export function parseYamlSubset(source: string): YamlValue {
  const lines: YamlLine[] = []
  source.split(/\r?\n/).forEach((raw, i) => {
    if (raw.includes('\t') && /^\s*\t/.test(raw)) {
      throw new YamlSubsetError(`line ${i + 1}: tab indentation`)
    }
    const text = raw.trimEnd()
    const trimmed = text.trimStart()
    if (trimmed === '' || trimmed.startsWith('#')) return
    if (trimmed === '---' || trimmed === '...') {
      throw new YamlSubsetError(`line ${i + 1}: document markers are not supported`)
    }
    lines.push({ indent: text.length - trimmed.length, text: trimmed, no: i + 1 })
  })
  if (lines.length === 0) return null
  let pos = 0
  const fail = (line: YamlLine | undefined, message: string): never => {
    throw new YamlSubsetError(`line ${line?.no ?? 'EOF'}: ${message}`)
  }
  const isItem = (l: YamlLine) => l.text === '-' || l.text.startsWith('- ')

  function scalar(raw: string, line: YamlLine): YamlValue {
    const s = raw.trim()
    if (s.startsWith('"')) {
      let out = ''
      let i = 1
      for (; i < s.length; i++) {
        const c = s[i]
        if (c === '\\') {
          const n = s[++i]
          const map: Record<string, string> = {
            n: '\n',
            t: '\t',
            '"': '"',
            '\\': '\\',
            '/': '/',
            r: '\r',
            '0': '\0',
          }
          if (n === undefined || map[n] === undefined) fail(line, `unsupported escape \\${n ?? ''}`)
          out += map[n]
        } else if (c === '"') break
        else out += c
      }
      if (i >= s.length) fail(line, 'unterminated double-quoted scalar')
      rest(s.slice(i + 1), line)
      return out
    }
    if (s.startsWith("'")) {
      let out = ''
      let i = 1
      for (; i < s.length; i++) {
        if (s[i] === "'") {
          if (s[i + 1] === "'") {
            out += "'"
            i++
          } else break
        } else out += s[i]
      }
      if (i >= s.length) fail(line, 'unterminated single-quoted scalar')
      rest(s.slice(i + 1), line)
      return out
    }
    const first = s[0]
    if (first !== undefined && '[{&*!|>%@`'.includes(first)) {
      fail(line, `unsupported YAML construct starting with ${JSON.stringify(first)}`)
    }
    const hash = s.search(/\s#/)
    const plain = (hash >= 0 ? s.slice(0, hash) : s).trim()
    if (/:\s/.test(plain) || plain.endsWith(':'))
      fail(line, `a plain scalar cannot contain ": " (${plain})`)
    if (plain === '' || plain === '~' || plain === 'null') return null
    if (plain === 'true') return true
    if (plain === 'false') return false
    if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(plain)) return Number(plain)
    return plain
  }

  function rest(after: string, line: YamlLine): void {
    const r = after.trim()
    if (r !== '' && !r.startsWith('#')) fail(line, `unexpected text after a quoted scalar: ${r}`)
  }

  /** Splits `key: value` (key plain or quoted); undefined when the line is not a mapping entry. */
  function splitKey(text: string): { key: string; value: string } | undefined {
    let m = /^"((?:[^"\\]|\\.)*)"\s*:(?:\s+|$)(.*)$/.exec(text)
    if (m) return { key: JSON.parse(`"${m[1]}"`) as string, value: m[2] }
    m = /^'((?:[^']|'')*)'\s*:(?:\s+|$)(.*)$/.exec(text)
    if (m) return { key: m[1].replaceAll("''", "'"), value: m[2] }
    m = /^([^\s#'"\-?:,[\]{}&*!|>%@`][^:#]*?|-[^\s:][^:#]*?)\s*:(?:\s+|$)(.*)$/.exec(text)
    if (m) return { key: m[1], value: m[2] }
    return undefined
  }

  function block(indent: number): YamlValue {
    const line = lines[pos]
    if (!line || line.indent < indent) return null
    return isItem(line) ? sequence(line.indent) : mapping(line.indent)
  }

  /** The value of `key:` with nothing after the colon: a nested block, or null. */
  function nested(parentIndent: number, allowSameIndentSequence: boolean): YamlValue {
    const next = lines[pos]
    if (!next) return null
    if (next.indent > parentIndent) return block(next.indent)
    if (allowSameIndentSequence && next.indent === parentIndent && isItem(next)) {
      return sequence(parentIndent)
    }
    return null
  }

  function mapping(indent: number): { [k: string]: YamlValue } {
    const out: { [k: string]: YamlValue } = {}
    while (pos < lines.length) {
      const line = lines[pos]
      if (line.indent < indent) break
      if (line.indent > indent) fail(line, 'unexpected indentation')
      if (isItem(line)) break
      const kv = splitKey(line.text)
      if (!kv) fail(line, `expected "key: value", got ${JSON.stringify(line.text)}`)
      const { key, value } = kv!
      if (Object.hasOwn(out, key)) fail(line, `duplicate key ${JSON.stringify(key)}`)
      pos++
      const v = value.trim()
      out[key] = v === '' || v.startsWith('#') ? nested(indent, true) : scalar(v, line)
    }
    return out
  }

  function sequence(indent: number): YamlValue[] {
    const out: YamlValue[] = []
    while (pos < lines.length) {
      const line = lines[pos]
      if (line.indent < indent) break
      if (line.indent > indent) fail(line, 'unexpected indentation')
      if (!isItem(line)) break
      const content = line.text === '-' ? '' : line.text.slice(2).trimStart()
      if (content === '' || content.startsWith('#')) {
        pos++
        out.push(nested(indent, false))
        continue
      }
      if (content.startsWith('- ')) fail(line, 'nested inline sequences are not supported')
      if (splitKey(content)) {
        // `- key: value`: a mapping whose first entry sits where `key` starts.
        const itemIndent = line.indent + (line.text.length - content.length)
        lines[pos] = { indent: itemIndent, text: content, no: line.no }
        out.push(mapping(itemIndent))
      } else {
        pos++
        out.push(scalar(content, line))
      }
    }
    return out
  }

  const value = block(lines[0].indent)
  if (pos < lines.length) fail(lines[pos], 'unexpected content')
  return value
}

// ---------------------------------------------------------------------------------------
// Expressions: `${{ inputs.x }}` and `${{ steps.<id>.outputs.<name> }}`, the only ones
// action.yml uses; anything else fails the step (the mini runner does not guess).

export interface ExpressionContext {
  inputs?: Record<string, string>
  steps?: Record<string, { outputs: Record<string, string>; outcome?: string; conclusion?: string }>
}

const IDENT = '[A-Za-z_][A-Za-z0-9_-]*'

function lookup<T>(obj: Record<string, T> | undefined, key: string): T | undefined {
  if (!obj) return undefined
  // Contexts and their property names are case-insensitive in Actions expressions.
  const k = Object.keys(obj).find((name) => name.toLowerCase() === key.toLowerCase())
  return k === undefined ? undefined : obj[k]
}

/** One expression's value (as the runner converts it to a string: null → ''). */
export function evaluateExpression(expr: string, ctx: ExpressionContext): string {
  const e = expr.trim()
  let m = new RegExp(`^inputs\\.(${IDENT})$`).exec(e)
  if (m) {
    if (!ctx.inputs) throw new Error(`the inputs context is not available here: ${e}`)
    return lookup(ctx.inputs, m[1]) ?? ''
  }
  m = new RegExp(`^steps\\.(${IDENT})\\.(outputs\\.(${IDENT})|outcome|conclusion)$`).exec(e)
  if (m) {
    const step = lookup(ctx.steps, m[1]) as
      { outputs: Record<string, string>; outcome?: string; conclusion?: string } | undefined
    if (!step) return ''
    if (m[3] !== undefined) {
      return lookup(step.outputs, m[3]) ?? ''
    }
    return (m[2] === 'outcome' ? step.outcome : step.conclusion) ?? ''
  }
  throw new Error(`the mini runner does not support the expression \${{ ${e} }}`)
}

/** A string with `${{ … }}` parts replaced by their values. */
export function interpolate(value: string, ctx: ExpressionContext): string {
  return value.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, expr: string) => evaluateExpression(expr, ctx))
}

/** `if:` / `post-if:` with the status functions: `always()`, `success()`, `failure()`, `cancelled()`. */
export function evaluateCondition(condition: string | undefined, jobFailed: boolean): boolean {
  const raw = (condition ?? 'success()').trim()
  const c = /^\$\{\{([\s\S]*)\}\}$/.exec(raw)?.[1]?.trim() ?? raw
  switch (c) {
    case 'always()':
      return true
    case 'success()':
      return !jobFailed
    case 'failure()':
      return jobFailed
    case 'cancelled()':
      return false
    default:
      throw new Error(`the mini runner does not support the condition ${JSON.stringify(raw)}`)
  }
}

// ---------------------------------------------------------------------------------------
// File commands and workflow commands

/**
 * Parses a file command (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV) as the runner does:
 * `name=value` lines and `name<<DELIMITER` heredocs (what @actions/core writes, with a
 * `ghadelimiter_<uuid>` delimiter), the value being the lines up to the delimiter line.
 */
export function parseFileCommand(content: string, file = 'file command'): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = content.split(/\r?\n/)
  // A trailing newline leaves one empty element.
  if (lines.at(-1) === '') lines.pop()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line === '') continue
    const eq = line.indexOf('=')
    const heredoc = line.indexOf('<<')
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const key = line.slice(0, eq)
      if (key === '')
        throw new Error(`${file}: invalid format (empty name) in ${JSON.stringify(line)}`)
      out[key] = line.slice(eq + 1)
      continue
    }
    if (heredoc <= 0) throw new Error(`${file}: invalid format ${JSON.stringify(line)}`)
    const key = line.slice(0, heredoc)
    const delimiter = line.slice(heredoc + 2)
    if (delimiter === '') throw new Error(`${file}: invalid format (empty delimiter) for ${key}`)
    const value: string[] = []
    let closed = false
    for (i++; i < lines.length; i++) {
      if (lines[i] === delimiter) {
        closed = true
        break
      }
      value.push(lines[i])
    }
    if (!closed) {
      throw new Error(`${file}: matching delimiter not found '${delimiter}' for ${key}`)
    }
    out[key] = value.join('\n')
  }
  return out
}

/** A `::command key=value,…::data` line from a step's output. */
export interface WorkflowCommand {
  command: string
  properties: Record<string, string>
  data: string
  stream: 'stdout' | 'stderr'
}

const unescapeData = (s: string) =>
  s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%')
const unescapeProperty = (s: string) => unescapeData(s).replace(/%3A/gi, ':').replace(/%2C/gi, ',')

/** The workflow commands in a step's output (stdout and stderr, as the runner reads both). */
export function parseWorkflowCommands(
  text: string,
  stream: 'stdout' | 'stderr',
): WorkflowCommand[] {
  const out: WorkflowCommand[] = []
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimStart()
    if (!line.startsWith('::')) continue
    const end = line.indexOf('::', 2)
    if (end < 0) continue
    const info = line.slice(2, end)
    const space = info.indexOf(' ')
    const command = space < 0 ? info : info.slice(0, space)
    if (!/^[A-Za-z-]+$/.test(command)) continue
    const properties: Record<string, string> = {}
    if (space >= 0) {
      for (const pair of info.slice(space + 1).split(',')) {
        const eq = pair.indexOf('=')
        if (eq > 0) properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1))
      }
    }
    out.push({ command, properties, data: unescapeData(line.slice(end + 2)), stream })
  }
  return out
}

// ---------------------------------------------------------------------------------------
// The runner

/** A parsed action.yml (the fields the mini runner reads). */
export interface ActionDefinition {
  name?: string
  inputs?: Record<string, { description?: string; required?: boolean; default?: string } | null>
  outputs?: Record<string, { description?: string; value?: string } | null>
  runs: {
    using: string
    main?: string
    post?: string
    'post-if'?: string
    steps?: {
      id?: string
      name?: string
      uses?: string
      run?: string
      with?: Record<string, string>
      if?: string
    }[]
  }
}

/** One step of the job. `run` is a child process (argv), standing in for a shell step. */
export type JobStep =
  | {
      id?: string
      name?: string
      uses: string
      with?: Record<string, string>
      if?: string
      env?: Record<string, string>
    }
  | {
      id?: string
      name: string
      run: { command: string; args: string[] }
      if?: string
      env?: Record<string, string>
    }

/** What one process of the job (a main, a post, a run step) did. */
export interface PhaseResult {
  /** As the runner's log titles it: `Run hivemind/action@v1`, `Post Run hivemind/action/step@v1`. */
  title: string
  kind: 'main' | 'post' | 'run'
  /** For actions: the directory the action was loaded from. */
  actionDir?: string
  exitCode: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  commands: WorkflowCommand[]
  /** Parsed GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV; the raw files too. */
  outputs: Record<string, string>
  state: Record<string, string>
  env: Record<string, string>
  summary: string
  files: { output: string; state: string; env: string; path: string; summary: string }
  /** The environment the process got (INPUT_*, STATE_*, GITHUB_*). */
  processEnv: Record<string, string>
  durationMs: number
}

/** The result of one job step (an action, composite or not, or a run step). */
export interface StepResult {
  id: string | undefined
  title: string
  /** success, failure, or skipped (its `if:` was false). */
  outcome: 'success' | 'failure' | 'skipped'
  outputs: Record<string, string>
  /** Why the runner failed it before any process ran (resolution, parse). */
  error?: string
}

export interface JobResult {
  steps: StepResult[]
  phases: PhaseResult[]
  /** Failed if any step failed (post phases included). */
  status: 'success' | 'failure'
  /** `::add-mask::` values, in order. */
  masks: string[]
  /** Processes of the job still alive after the last post, which the runner then kills. */
  orphans: { pid: number; cmdline: string }[]
  /** `::error::` / `::warning::` messages and the runner's own errors and warnings. */
  errors: string[]
  warnings: string[]
  /** The job summary: every phase's GITHUB_STEP_SUMMARY, in order. */
  summary: string
  /** Every phase's output with the masks applied, as the runner's log shows it. */
  log: string
}

interface PostEntry {
  title: string
  actionDir: string
  script: string
  condition: string
  inputEnv: Record<string, string>
  state: Record<string, string>
}

/** Hooks the tests use to look between phases (e.g. which daemons run after each post). */
export interface JobHooks {
  afterPhase?: (phase: PhaseResult) => void | Promise<void>
}

export interface MiniRunnerOptions {
  /** Temp root: `_actions/`, the workspace, RUNNER_TEMP and the step files go under it. */
  root: string
  /** GITHUB_WORKSPACE (default `<root>/work/<repo>`); must not be this repository. */
  workspace: string
  runnerTemp: string
  /** The job's environment (HOME, agent homes, ACTIONS_ID_TOKEN_REQUEST_*, …). */
  env: Record<string, string>
}

/** `<owner>/<repo>` → how to populate `_actions/<owner>/<repo>/<ref>/` from this tree. */
export type ActionSource = (dir: string, ref: string) => Promise<void>

/** Copies what a tag of hivemind/action holds for the runner: action.yml, step/action.yml, step/dist/. */
export async function copyActionFiles(dir: string): Promise<void> {
  await mkdir(join(dir, 'step'), { recursive: true })
  await cp(join(REPO_ROOT, 'action.yml'), join(dir, 'action.yml'))
  await cp(join(REPO_ROOT, 'step', 'action.yml'), join(dir, 'step', 'action.yml'))
  await cp(join(REPO_ROOT, 'step', 'dist'), join(dir, 'step', 'dist'), { recursive: true })
}

/** The runner's error for a local action that is not there. */
export const localActionMissing = (dir: string) =>
  `Can't find 'action.yml', 'action.yaml' or 'Dockerfile' under '${dir}'. Did you forget to run actions/checkout before running your local action?`

export class MiniRunner {
  readonly root: string
  readonly workspace: string
  readonly runnerTemp: string
  readonly actionsDir: string
  readonly env: Record<string, string>
  /** `_actions/<owner>/<repo>/<ref>` directories downloaded so far. */
  readonly downloads: string[] = []
  readonly #sources = new Map<string, ActionSource>([['hivemind/action', copyActionFiles]])
  #fileCounter = 0

  constructor(options: MiniRunnerOptions) {
    this.root = options.root
    this.workspace = resolve(options.workspace)
    this.runnerTemp = options.runnerTemp
    this.actionsDir = join(options.root, '_actions')
    this.env = { ...options.env }
    if (resolve(this.workspace).startsWith(resolve(REPO_ROOT))) {
      throw new Error(`the workspace ${this.workspace} must not be inside this repository`)
    }
  }

  /** Makes `uses: <ownerRepo>@<ref>` download what `source` writes (any ref). */
  publish(ownerRepo: string, source: ActionSource): void {
    this.#sources.set(ownerRepo.toLowerCase(), source)
  }

  /** `_actions/<owner>/<repo>/<ref>/`, downloaded on first use, as the runner does. */
  async download(owner: string, repo: string, ref: string): Promise<string> {
    const dir = join(this.actionsDir, owner, repo, ref)
    if (existsSync(dir)) return dir
    const source = this.#sources.get(`${owner}/${repo}`.toLowerCase())
    if (!source) {
      throw new Error(`Unable to resolve action \`${owner}/${repo}@${ref}\`, repository not found`)
    }
    await mkdir(dir, { recursive: true })
    await source(dir, ref)
    this.downloads.push(dir)
    return dir
  }

  /** Where `uses:` points, and its parsed action.yml; throws the runner's errors. */
  async resolveAction(uses: string): Promise<{ dir: string; def: ActionDefinition }> {
    let dir: string
    if (uses.startsWith('./') || uses.startsWith('../') || uses === '.') {
      // Local actions resolve against the workspace, in a composite too (actions/runner#1348).
      dir = resolve(this.workspace, uses)
      if (!findActionFile(dir)) throw new Error(localActionMissing(dir))
    } else if (uses.startsWith('docker://')) {
      throw new Error(`the mini runner does not run docker actions (${uses})`)
    } else {
      const m = /^([^/@\s]+)\/([^/@\s]+)((?:\/[^@\s]+)?)@([^@\s]+)$/.exec(uses)
      if (!m) {
        throw new Error(
          `Expected format {org}/{repo}[/path]@ref. Actual '${uses}' Input string was not in a correct format.`,
        )
      }
      const [, owner, repo, path, ref] = m
      const base = await this.download(owner, repo, ref)
      dir = join(base, path.replace(/^\//, ''))
      if (!findActionFile(dir)) {
        throw new Error(
          `Can't find 'action.yml', 'action.yaml' or 'Dockerfile' for action '${uses}'.`,
        )
      }
    }
    const file = findActionFile(dir)!
    const def = parseYamlSubset(await readFile(file, 'utf8')) as unknown as ActionDefinition
    if (!def || typeof def !== 'object' || !def.runs || typeof def.runs.using !== 'string') {
      throw new Error(`${file}: no runs.using`)
    }
    return { dir, def }
  }

  /** Runs the job's steps, then the post phases (reverse order, under their post-if). */
  async runJob(steps: readonly JobStep[], hooks: JobHooks = {}): Promise<JobResult> {
    const job: JobState = {
      env: { RUNNER_TRACKING_ID: `github_${randomUUID()}`, ...this.env },
      path: [],
      failed: false,
      posts: [],
      phases: [],
      errors: [],
      warnings: [],
      hooks,
    }
    const results: StepResult[] = []
    for (const step of steps) {
      const title = 'uses' in step ? `Run ${step.uses}` : step.name
      if (!evaluateCondition(step.if, job.failed)) {
        results.push({ id: step.id, title, outcome: 'skipped', outputs: {} })
        continue
      }
      let r: StepResult
      if ('uses' in step) {
        try {
          const out = await this.#runAction(step.uses, step.with ?? {}, job, step.env ?? {})
          r = { id: step.id, title, outcome: out.ok ? 'success' : 'failure', outputs: out.outputs }
        } catch (err) {
          const message = (err as Error).message
          job.errors.push(message)
          r = { id: step.id, title, outcome: 'failure', outputs: {}, error: message }
        }
      } else {
        const phase = await this.#runProcess(
          title,
          'run',
          step.run.command,
          step.run.args,
          { ...job.env, ...(step.env ?? {}) },
          job,
        )
        r = {
          id: step.id,
          title,
          outcome: phase.exitCode === 0 ? 'success' : 'failure',
          outputs: phase.outputs,
        }
      }
      if (r.outcome === 'failure') job.failed = true
      results.push(r)
    }

    // Post phases: after every step, last registered first.
    for (const post of [...job.posts].reverse()) {
      if (!evaluateCondition(post.condition, job.failed)) continue
      const env: Record<string, string> = { ...job.env, ...post.inputEnv }
      for (const [k, v] of Object.entries(post.state)) env[`STATE_${k}`] = v
      const phase = await this.#runProcess(
        post.title,
        'post',
        process.execPath,
        [join(post.actionDir, post.script)],
        env,
        job,
        post.actionDir,
      )
      if (phase.exitCode !== 0) job.failed = true
    }

    // "Cleaning up orphan processes": the runner kills what is left of the job's processes
    // (found by the RUNNER_TRACKING_ID every step's environment carries).
    const orphans = findTrackedProcesses(job.env.RUNNER_TRACKING_ID)
    for (const o of orphans) {
      try {
        process.kill(o.pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }

    const masks = job.phases.flatMap((p) =>
      p.commands.filter((c) => c.command === 'add-mask' && c.data !== '').map((c) => c.data),
    )
    const mask = (s: string) =>
      [...masks].sort((a, b) => b.length - a.length).reduce((acc, m) => acc.split(m).join('***'), s)
    for (const p of job.phases) {
      for (const c of p.commands) {
        if (c.command === 'error') job.errors.push(c.data)
        if (c.command === 'warning') job.warnings.push(c.data)
      }
    }
    return {
      steps: results,
      phases: job.phases,
      status: job.failed ? 'failure' : 'success',
      masks,
      orphans,
      errors: job.errors,
      warnings: job.warnings,
      summary: job.phases.map((p) => p.summary).join(''),
      log: job.phases
        .map((p) => `##[group]${p.title}\n${mask(p.stdout)}${mask(p.stderr)}##[endgroup]\n`)
        .join(''),
    }
  }

  async #runAction(
    uses: string,
    withValues: Record<string, string>,
    job: JobState,
    stepEnv: Record<string, string>,
  ): Promise<{ ok: boolean; outputs: Record<string, string> }> {
    const { dir, def } = await this.resolveAction(uses)
    const declared = def.inputs ?? {}
    const unexpected = Object.keys(withValues).filter(
      (k) => !Object.keys(declared).some((d) => d.toLowerCase() === k.toLowerCase()),
    )
    if (unexpected.length > 0) {
      job.warnings.push(
        `Unexpected input(s) '${unexpected.join("', '")}', valid inputs are ['${Object.keys(declared).join("', '")}']`,
      )
    }
    // The action's inputs: what `with:` gave, else the default.
    const inputs: Record<string, string> = {}
    for (const [name, spec] of Object.entries(declared)) {
      const given = Object.entries(withValues).find(([k]) => k.toLowerCase() === name.toLowerCase())
      inputs[name] = given ? given[1] : String(spec?.default ?? '')
    }
    for (const k of unexpected) inputs[k] = withValues[k]!
    const using = def.runs.using

    if (using === 'composite') {
      const steps: NonNullable<ExpressionContext['steps']> = {}
      let ok = true
      for (const nested of def.runs.steps ?? []) {
        if (!evaluateCondition(nested.if, !ok)) continue
        if (nested.run !== undefined || !nested.uses) {
          throw new Error(`the mini runner runs only \`uses:\` steps in composites (${uses})`)
        }
        const w: Record<string, string> = {}
        for (const [k, v] of Object.entries(nested.with ?? {})) {
          w[k] = interpolate(String(v ?? ''), { inputs, steps })
        }
        const r = await this.#runAction(nested.uses, w, job, stepEnv)
        if (nested.id) {
          steps[nested.id] = {
            outputs: r.outputs,
            outcome: r.ok ? 'success' : 'failure',
            conclusion: r.ok ? 'success' : 'failure',
          }
        }
        if (!r.ok) {
          ok = false
          break
        }
      }
      const outputs: Record<string, string> = {}
      for (const [name, spec] of Object.entries(def.outputs ?? {})) {
        outputs[name] = interpolate(String(spec?.value ?? ''), { inputs, steps })
      }
      return { ok, outputs }
    }

    if (using !== 'node24' && using !== 'node20') {
      throw new Error(`the mini runner does not run \`using: ${using}\` actions (${uses})`)
    }
    if (!def.runs.main) throw new Error(`${uses}: runs.main is missing`)
    const inputEnv: Record<string, string> = {}
    for (const [name, value] of Object.entries(inputs)) {
      inputEnv[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value
    }
    const actionDir = dir
    if (def.runs.post) {
      // Registered when the main starts, so `post-if: always()` runs it even if main fails.
      job.posts.push({
        title: `Post Run ${uses}`,
        actionDir,
        script: def.runs.post,
        condition: def.runs['post-if'] ?? 'always()',
        inputEnv,
        state: {},
      })
    }
    const post = def.runs.post ? job.posts.at(-1) : undefined
    const phase = await this.#runProcess(
      `Run ${uses}`,
      'main',
      process.execPath,
      [join(actionDir, def.runs.main)],
      { ...job.env, ...stepEnv, ...inputEnv },
      job,
      actionDir,
    )
    if (post) post.state = phase.state
    return { ok: phase.exitCode === 0, outputs: phase.outputs }
  }

  async #runProcess(
    title: string,
    kind: PhaseResult['kind'],
    command: string,
    args: readonly string[],
    baseEnv: Record<string, string>,
    job: JobState,
    actionDir?: string,
  ): Promise<PhaseResult> {
    const n = ++this.#fileCounter
    const dir = join(this.runnerTemp, '_runner_file_commands')
    await mkdir(dir, { recursive: true })
    const files = {
      output: join(dir, `set_output_${n}`),
      state: join(dir, `save_state_${n}`),
      env: join(dir, `set_env_${n}`),
      path: join(dir, `add_path_${n}`),
      summary: join(dir, `step_summary_${n}`),
    }
    for (const f of Object.values(files)) await writeFile(f, '')
    const env: Record<string, string> = {
      ...baseEnv,
      GITHUB_OUTPUT: files.output,
      GITHUB_STATE: files.state,
      GITHUB_ENV: files.env,
      GITHUB_PATH: files.path,
      GITHUB_STEP_SUMMARY: files.summary,
    }
    if (job.path.length > 0) env.PATH = [...job.path, env.PATH ?? ''].join(':')
    const started = performance.now()
    const child = spawn(command, [...args], {
      cwd: this.workspace,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), PHASE_TIMEOUT_MS)
    const { code, signal } = await new Promise<{
      code: number | null
      signal: NodeJS.Signals | null
    }>((done, fail) => {
      child.once('error', fail)
      child.once('close', (c, s) => done({ code: c, signal: s }))
    }).finally(() => clearTimeout(timer))
    const raw = {
      output: await readFile(files.output, 'utf8'),
      state: await readFile(files.state, 'utf8'),
      env: await readFile(files.env, 'utf8'),
      path: await readFile(files.path, 'utf8'),
      summary: await readFile(files.summary, 'utf8'),
    }
    const phase: PhaseResult = {
      title,
      kind,
      ...(actionDir === undefined ? {} : { actionDir }),
      exitCode: code,
      signal,
      stdout,
      stderr,
      commands: [
        ...parseWorkflowCommands(stdout, 'stdout'),
        ...parseWorkflowCommands(stderr, 'stderr'),
      ],
      outputs: parseFileCommand(raw.output, 'GITHUB_OUTPUT'),
      state: parseFileCommand(raw.state, 'GITHUB_STATE'),
      env: parseFileCommand(raw.env, 'GITHUB_ENV'),
      summary: raw.summary,
      files: raw,
      processEnv: env,
      durationMs: Math.round(performance.now() - started),
    }
    // What a step exports reaches the later steps (and their daemons), as on a runner.
    Object.assign(job.env, phase.env)
    job.path.unshift(...raw.path.split('\n').filter(Boolean).reverse())
    job.phases.push(phase)
    await job.hooks.afterPhase?.(phase)
    return phase
  }
}

interface JobState {
  env: Record<string, string>
  path: string[]
  failed: boolean
  posts: PostEntry[]
  phases: PhaseResult[]
  errors: string[]
  warnings: string[]
  hooks: JobHooks
}

/** Live (not zombie) processes whose environment has RUNNER_TRACKING_ID=`id` (Linux /proc). */
export function findTrackedProcesses(id: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = []
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return out
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const environ = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0')
      if (!environ.includes(`RUNNER_TRACKING_ID=${id}`)) continue
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim()
      out.push({ pid: Number(name), cmdline })
    } catch {
      // exited, or not ours to read
    }
  }
  return out
}

function findActionFile(dir: string): string | undefined {
  for (const name of ['action.yml', 'action.yaml']) {
    const f = join(dir, name)
    if (existsSync(f)) return f
  }
  return undefined
}
