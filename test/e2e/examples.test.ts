// The deployment examples are documentation that users copy as is: these tests pin the
// pieces that must agree with the CLI's interface and with each other. No Docker daemon
// and no GitHub runner here, so the files are read, not run.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers.ts'

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

const STATE_DIR = '/home/hivemind/.hivemind'
const HEALTH_CMD = ['hivemind', 'health', '-q', '--state-dir', STATE_DIR]

describe('examples/copilot', () => {
  interface McpConfig {
    mcpServers: Record<string, { env?: Record<string, string> } & Record<string, unknown>>
  }
  interface HooksFile {
    version: number
    hooks: Record<string, { type: string; bash?: string; timeoutSec?: number }[]>
  }
  const mcp = JSON.parse(read('examples/copilot/mcp-config.json')) as McpConfig
  const hooks = JSON.parse(read('examples/copilot/.github/hooks/hooks.json')) as HooksFile
  const setup = read('examples/copilot/.github/workflows/copilot-setup-steps.yml')
  const readme = read('examples/copilot/README.md')
  const env = mcp.mcpServers.hivemind?.env ?? {}
  /** GitHub's substitution syntax; a value without `$` is passed as a literal. */
  const SUBSTITUTION = /^\$\{?(COPILOT_MCP_[A-Z0-9_]+)\}?$/
  /** The Copilot-side names the `env` values refer to. */
  const referenced = Object.values(env).map((v) => SUBSTITUTION.exec(v)?.[1] ?? v)

  it('runs `hivemind mcp` as a local server exposing only `status`', () => {
    expect(Object.keys(mcp.mcpServers)).toEqual(['hivemind'])
    expect(mcp.mcpServers.hivemind).toMatchObject({
      type: 'local',
      command: 'hivemind',
      args: ['mcp'],
      tools: ['status'],
    })
  })

  it('maps the OIDC request and the endpoint from COPILOT_MCP_ names', () => {
    expect(env).toEqual({
      ACTIONS_ID_TOKEN_REQUEST_URL: '$COPILOT_MCP_ACTIONS_ID_TOKEN_REQUEST_URL',
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: '$COPILOT_MCP_ACTIONS_ID_TOKEN_REQUEST_TOKEN',
      HIVEMIND_ENDPOINT: '$COPILOT_MCP_HIVEMIND_ENDPOINT',
    })
    for (const value of Object.values(env)) expect(value).toMatch(SUBSTITUTION)
  })

  // The ID-token request exists only while the job runs, so a setup step exports it; the
  // endpoint is a variable the user creates.
  it.each(referenced)(
    '%s has one source: a setup step or a variable the README asks for',
    (name) => {
      const fromSetup = setup.includes(`echo "${name}=`) && setup.includes('>> "$GITHUB_ENV"')
      const asVariable = readme.includes(`| \`${name}\``)
      const perRun = name.startsWith('COPILOT_MCP_ACTIONS_ID_TOKEN_REQUEST_')
      expect({ fromSetup, asVariable }).toEqual({ fromSetup: perRun, asVariable: !perRun })
    },
  )

  it('flushes at sessionEnd without failing the session, within the hook timeout', () => {
    expect(hooks).toEqual({
      version: 1,
      hooks: { sessionEnd: [expect.objectContaining({ type: 'command' })] },
    })
    const [hook] = hooks.hooks.sessionEnd
    expect(hook.bash).toBe('hivemind flush || true')
    // `hivemind flush` waits up to 60 s; the hook's default timeout is 30 s.
    expect(hook.timeoutSec).toBeGreaterThan(60)
  })

  it('installs the CLI with Node 24 in the `copilot-setup-steps` job, with id-token: write', () => {
    const job = yamlSection(setup, 'jobs', 'copilot-setup-steps')
    expect(yamlSection(job, 'permissions')).toMatch(/^\s*id-token: write$/m)
    expect(yamlSection(job, 'permissions')).toMatch(/^\s*contents: read$/m)
    const steps = yamlSection(job, 'steps')
    expect(steps).toMatch(/^\s*- uses: actions\/setup-node@v4$/m)
    expect(steps).toMatch(/^\s*node-version: 24$/m)
    expect(steps).toMatch(/^\s*- run: npm install -g @hivemind\/cli$/m)
  })
})

describe('examples/docker-compose and packages/cli/Dockerfile', () => {
  const dockerfile = parseDockerfile(read('packages/cli/Dockerfile'))
  const image = dockerfile.slice(dockerfile.findLastIndex((i) => i.name === 'FROM'))
  const one = (name: string) => {
    const found = image.filter((i) => i.name === name)
    if (found.length !== 1) throw new Error(`${found.length} ${name} in the final stage`)
    return found[0]
  }
  const compose = read('examples/docker-compose/compose.yaml')
  const sidecar = yamlSection(compose, 'services', 'hivemind')
  const agent = yamlSection(compose, 'services', 'agent')
  const readme = read('examples/docker-compose/README.md')

  it.each([
    ['FROM', 'node:24-slim'],
    ['USER', 'hivemind'],
    ['STOPSIGNAL', 'SIGTERM'],
    ['ENTRYPOINT', '["hivemind", "start", "--foreground"]'],
  ])('the image has %s %s', (name, args) => {
    expect(one(name).args).toBe(args)
  })

  it('keeps its state in /home/hivemind/.hivemind and checks health there', () => {
    expect(one('ENV').args.split(/\s+/)).toContain(`HIVEMIND_STATE_DIR=${STATE_DIR}`)
    const healthcheck = healthcheckOf(one('HEALTHCHECK').args)
    expect(healthcheck).toEqual({
      cmd: HEALTH_CMD,
      flags: { interval: '10s', timeout: '3s', 'start-period': '20s', retries: '3' },
    })
  })

  it('builds with a frozen lockfile and deploys the CLI with --legacy', () => {
    const runs = dockerfile.filter((i) => i.name === 'RUN').map((i) => i.args)
    expect(runs.some((r) => r.includes('npx -y pnpm@10 install --frozen-lockfile'))).toBe(true)
    expect(
      runs.some((r) => /pnpm@10 --filter @hivemind\/cli deploy --prod --legacy \/out$/.test(r)),
    ).toBe(true)
  })

  it.each(['USER', 'STOPSIGNAL', 'HEALTHCHECK', 'ENTRYPOINT'])(
    "the README quotes the image's %s line as it is",
    (name) => {
      expect(readme).toContain(`${name} ${one(name).args}`)
    },
  )

  it("the sidecar uses the image's healthcheck", () => {
    const { cmd, flags } = healthcheckOf(one('HEALTHCHECK').args)
    const healthcheck = yamlSection(sidecar, 'healthcheck')
    expect(yamlFlow(yamlValue(healthcheck, 'test'))).toEqual(['CMD', ...cmd])
    const composeFlags = Object.fromEntries(
      Object.keys(flags).map((flag) => [flag, yamlValue(healthcheck, flag.replace('-', '_'))]),
    )
    expect(composeFlags).toEqual(flags)
  })

  it('the sidecar gets 30 s to stop, and its drain timeout fits inside them', () => {
    expect(yamlValue(sidecar, 'stop_grace_period')).toBe('30s')
    expect(readme).toContain('stop_grace_period: 30s')
    const command = yamlFlow(yamlValue(sidecar, 'command'))
    const drain = Number(command[command.indexOf('--drain-timeout') + 1])
    expect(drain).toBeGreaterThan(0)
    expect(drain).toBeLessThan(30)
  })

  it("the sidecar watches the agent's sessions volume read-only at /watch/.claude", () => {
    expect(yamlItems(yamlSection(sidecar, 'volumes'))).toContain('agent-sessions:/watch/.claude:ro')
    expect(yamlValue(yamlSection(sidecar, 'environment'), 'HIVEMIND_WATCH_PATHS')).toBe(
      '/watch/.claude',
    )
    const claudeDir = yamlValue(yamlSection(agent, 'environment'), 'CLAUDE_CONFIG_DIR')
    expect(yamlItems(yamlSection(agent, 'volumes'))).toContain(`agent-sessions:${claudeDir}`)
  })

  it('the sidecar keeps its state on a named volume and builds this Dockerfile', () => {
    expect(yamlItems(yamlSection(sidecar, 'volumes'))).toContain(`hivemind-state:${STATE_DIR}`)
    expect(yamlSection(compose, 'volumes')).toMatch(/^\s*hivemind-state:$/m)
    expect(yamlValue(yamlSection(sidecar, 'build'), 'context')).toBe('../..')
    expect(yamlValue(yamlSection(sidecar, 'build'), 'dockerfile')).toBe('packages/cli/Dockerfile')
  })

  it('the build context leaves out host installs and build output', () => {
    const ignored = read('.dockerignore').split('\n')
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '.git']))
  })
})

interface Instruction {
  name: string
  args: string
}

/** Instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const logical = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\s*\\\n\s*/g, ' ')
  return logical
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [, name = '', args = ''] = /^\s*(\S+)\s+(.*?)\s*$/.exec(l) ?? []
      return { name: name.toUpperCase(), args }
    })
}

function healthcheckOf(args: string): { cmd: string[]; flags: Record<string, string> } {
  const [, flagText = '', cmd = ''] = /^(.*?)\s*CMD\s+(\[.*\])$/.exec(args) ?? []
  const flags = Object.fromEntries(
    [...flagText.matchAll(/--([a-z-]+)=(\S+)/g)].map(([, k, v]) => [k, v]),
  )
  return { cmd: JSON.parse(cmd) as string[], flags }
}

// Not a YAML parser: enough of block-style YAML for these two files, read by indentation.
// (`yaml` is only a transitive dependency of the workspace, not one `test/` can import.)

/** The lines nested under `key:` at the top level of `text`, following `path`. */
function yamlSection(text: string, ...path: string[]): string {
  let lines = text.split('\n')
  for (const key of path) {
    const top = topIndent(lines)
    const i = lines.findIndex((l) => indentOf(l) === top && l.trim().startsWith(`${key}:`))
    if (i === -1) throw new Error(`no "${key}:" in\n${lines.join('\n')}`)
    const end = lines.findIndex((l, j) => j > i && isContent(l) && indentOf(l) <= top)
    lines = lines.slice(i + 1, end === -1 ? undefined : end)
  }
  return lines.join('\n')
}

/** The scalar (or flow collection, as text) of `key: value` at the top level of `section`. */
function yamlValue(section: string, key: string): string {
  const lines = section.split('\n')
  const top = topIndent(lines)
  const line = lines.find((l) => indentOf(l) === top && l.trim().startsWith(`${key}:`))
  if (line === undefined) throw new Error(`no "${key}:" in\n${section}`)
  return unquote(
    line
      .trim()
      .slice(key.length + 1)
      .replace(/\s+#.*$/, '')
      .trim(),
  )
}

/** The `- item` scalars at the top level of `section`. */
function yamlItems(section: string): string[] {
  const lines = section.split('\n')
  const top = topIndent(lines)
  return lines
    .filter((l) => indentOf(l) === top && l.trim().startsWith('- '))
    .map((l) => unquote(l.trim().slice(2).trim()))
}

/** A flow sequence of single- or double-quoted or plain strings: `['a', "b", c]`. */
function yamlFlow(text: string): string[] {
  const inner = /^\[(.*)\]$/.exec(text)?.[1]
  if (inner === undefined) throw new Error(`not a flow sequence: ${text}`)
  return inner.split(',').map((s) => unquote(s.trim()))
}

function unquote(s: string): string {
  return /^(['"]).*\1$/.test(s) ? s.slice(1, -1) : s
}

function isContent(line: string): boolean {
  return line.trim() !== '' && !line.trim().startsWith('#')
}

function indentOf(line: string): number {
  return isContent(line) ? line.length - line.trimStart().length : -1
}

function topIndent(lines: string[]): number {
  return Math.min(...lines.filter(isContent).map(indentOf))
}
