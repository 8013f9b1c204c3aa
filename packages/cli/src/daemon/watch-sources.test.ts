import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { UsageError } from '../errors.js'
import { parseWatchPaths, recognizeLayout, resolveWatchSources } from './watch-sources.js'

const dirs: string[] = []
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'hivemind-watch-'))
  dirs.push(d)
  return d
}

describe('parseWatchPaths', () => {
  it('reads plain directories and agent=directory entries, resolving relative paths', () => {
    expect(parseWatchPaths(' /watch/.claude , codex=/watch/cx,gemini=rel ,', '/base')).toEqual([
      { agent: undefined, path: '/watch/.claude' },
      { agent: 'codex', path: '/watch/cx' },
      { agent: 'gemini-cli', path: '/base/rel' },
    ])
  })

  it('treats a path containing = after a slash as a path', () => {
    expect(parseWatchPaths('/data/a=b', '/')).toEqual([{ agent: undefined, path: '/data/a=b' }])
  })

  it('rejects an unknown agent and names the known ones', () => {
    expect(() => parseWatchPaths('claud=/x', '/')).toThrow(UsageError)
    expect(() => parseWatchPaths('claud=/x', '/')).toThrow(/unknown agent "claud".*claude-code/)
  })

  it('rejects an agent with no directory', () => {
    expect(() => parseWatchPaths('codex=', '/')).toThrow(/names no directory/)
  })

  it('is empty when unset', () => {
    expect(parseWatchPaths(undefined, '/')).toEqual([])
    expect(parseWatchPaths('  ', '/')).toEqual([])
  })
})

describe('recognizeLayout', () => {
  it('knows an agent home by its name or its marker directory', async () => {
    const root = await temp()
    expect(await recognizeLayout(join(root, '.claude'))).toBe('claude-code')
    await mkdir(join(root, 'mounted', 'sessions'), { recursive: true })
    expect(await recognizeLayout(join(root, 'mounted'))).toBe('codex')
    await mkdir(join(root, 'g', 'tmp'), { recursive: true })
    expect(await recognizeLayout(join(root, 'g'))).toBe('gemini-cli')
    await mkdir(join(root, 'c', 'session-state'), { recursive: true })
    expect(await recognizeLayout(join(root, 'c'))).toBe('copilot')
    expect(await recognizeLayout(join(root, 'plain'))).toBeUndefined()
  })
})

describe('resolveWatchSources', () => {
  it('adds watch paths to the agent homes, and an unrecognised one to every agent', async () => {
    const root = await temp()
    const env = { CLAUDE_CONFIG_DIR: join(root, 'cc'), CODEX_HOME: join(root, 'cx') }
    const sources = await resolveWatchSources(
      env,
      [
        { agent: undefined, path: '/watch/.claude' },
        { agent: undefined, path: join(root, 'unknown') },
      ],
      root,
    )
    const byAgent = Object.fromEntries(sources.map((s) => [s.agent, s.roots]))
    expect(byAgent['claude-code']).toEqual([
      join(root, 'cc'),
      '/watch/.claude',
      join(root, 'unknown'),
    ])
    expect(byAgent.codex).toEqual([join(root, 'cx'), join(root, 'unknown')])
    expect(byAgent['gemini-cli']).toContain(join(root, 'unknown'))
  })

  it('watches aider only where it is named', async () => {
    const root = await temp()
    const none = await resolveWatchSources({}, [], root)
    expect(none.find((s) => s.agent === 'aider')).toBeUndefined()
    const named = await resolveWatchSources({}, [{ agent: 'aider', path: '/repo' }], root)
    expect(named.find((s) => s.agent === 'aider')?.roots).toEqual(['/repo'])
  })
})
