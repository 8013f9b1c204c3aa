import { readFileSync } from 'node:fs'
import { cp, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  FIXTURES,
  SHARED,
  describeShared,
  expectWellFormed,
  fileOf,
  kinds,
  parseAll,
  tokenSum,
  useTmp,
} from '../../test/helpers.ts'
import { ADAPTERS, adapterFor, resolveAgent } from './index.ts'

const { copilot, opencode, aider, cursor } = ADAPTERS

describe(resolveAgent.name, () => {
  it.each([
    ['claude', 'claude-code'],
    ['gemini', 'gemini-cli'],
    ['codex', 'codex'],
    ['Cursor', 'cursor'],
    ['nope', undefined],
  ])('%s → %s', (name, id) => {
    expect(resolveAgent(name)).toBe(id)
    expect(adapterFor(name)?.id).toBe(id)
  })
})

describe('copilotAdapter', () => {
  const root = join(FIXTURES, 'copilot')
  it('fixture: tools, errors, resume, usage from each shutdown, partial line left', async () => {
    expect(copilot.defaultRoots({ COPILOT_HOME: '/x' })).toEqual(['/x'])
    const [file] = await copilot.discover([root])
    const r = await copilot.parse(file)
    expectWellFormed(r)
    expect(kinds(r)).toEqual({
      system: 4,
      user_message: 1,
      assistant_message: 1,
      tool_call: 1,
      tool_result: 1,
      error: 1,
      usage: 2,
      meta: 1,
    })
    // A copilotVersion 0.0.400 file: the second run's counters restarted from zero, so
    // each shutdown is its own run. `inputTokens` includes the cache reads.
    expect(tokenSum(r.events)).toEqual({
      input: 2500,
      output: 250,
      cache_read: 1000,
      cache_write: 0,
    })
    expect(r.events.find((e) => e.kind === 'tool_result')?.tool).toMatchObject({
      name: 'bash',
      output: 'ok',
    })
    expect(r.nextOffset).toBe(readFileSync(file.path).lastIndexOf(0x0a) + 1)
    expect(r.sessions[0]).toMatchObject({
      cwd: '/tmp/proj',
      git_branch: 'main',
      model: 'gpt-5',
      title: 'Fix the "build"',
      host: 'copilot-agent',
    })
  })
})

describe('copilotAdapter (a resumed session from a CLI that keeps totals across runs)', () => {
  const root = join(FIXTURES, 'copilot-resumed')

  it('takes each cumulative shutdown minus the one before, net of cache tokens', async () => {
    const [file] = await copilot.discover([root])
    const r = await copilot.parse(file)
    expectWellFormed(r)
    // Run 1: sonnet 30000 in (24000 read, 1000 written). Run 2 adds 20000 in (16000 read,
    // 500 written) and 600 out on sonnet, plus a new model.
    expect(
      r.events
        .filter((e) => e.kind === 'usage')
        .map((e) => [e.model, e.usage?.input_tokens, e.usage?.output_tokens]),
    ).toEqual([
      ['claude-sonnet-4.5', 5000, 900],
      ['claude-sonnet-4.5', 3500, 600],
      ['gpt-5-mini', 2000, 100],
    ])
    // The session's usage adds up to the last shutdown's totals, counted once.
    const t = tokenSum(r.events)
    expect(t).toEqual({ input: 10500, output: 1600, cache_read: 40000, cache_write: 1500 })
    expect(t.input + t.cache_read + t.cache_write).toBe(50000 + 2000)
  })

  it('a read that starts after the first shutdown still subtracts it', async () => {
    const [file] = await copilot.discover([root])
    const full = await copilot.parse(file)
    const fromOffset = readFileSync(file.path).indexOf('{"type":"session.resume"')
    const tail = await copilot.parse(file, { fromOffset })
    expect(tail.events.filter((e) => e.kind === 'usage')).toEqual(
      full.events.filter((e) => e.kind === 'usage' && e.seq >= 8),
    )
  })

  it('compaction start and complete are compaction events, with the summary', async () => {
    const [file] = await copilot.discover([root])
    const r = await copilot.parse(file)
    const compactions = r.events.filter((e) => e.kind === 'compaction')
    expect(compactions.map((e) => e.native_type)).toEqual([
      'session.compaction_start',
      'session.compaction_complete',
    ])
    expect(compactions[1].text).toBe(
      '<overview>The parser was refactored into a tokenizer and a reader.</overview>',
    )
    expect(r.sessions[0]).toMatchObject({ title: 'Refactor the parser', cwd: '/home/a/parser' })
  })
})

describeShared('copilotAdapter (real files)', () => {
  it('resume in the same file, two shutdowns, parentIds not on disk', async () => {
    const { files, results } = await parseAll(copilot, join(SHARED, 'copilot'))
    expect(files).toHaveLength(1)
    const r = results.get(files[0].path)!
    expectWellFormed(r)
    expect(r.events).toHaveLength(13)
    expect(r.events.filter((e) => e.native_type === 'session.shutdown')).toHaveLength(2)
    expect(kinds(r)).toMatchObject({ user_message: 2, error: 2 })
    expect(r.sessions[0]).toMatchObject({
      source_session_id: '3fc55392-3e98-4470-8d46-86557601b171',
      model: 'claude-haiku-4.5',
      title: 'Cleanup decisions for Gemini instances',
      git_branch: 'claude/resolve-pr-conflicts',
    })
  })
})

describe('opencodeAdapter', () => {
  const tmp = useTmp()
  it('fixture: parts become events; a rewritten part is an upsert with a higher rev', async () => {
    const d = await tmp()
    await cp(join(FIXTURES, 'opencode'), d, { recursive: true })
    const [file] = await opencode.discover([d])
    const r = await opencode.parse(file)
    expectWellFormed(r)
    expect(kinds(r)).toEqual({
      meta: 3,
      user_message: 1,
      assistant_message: 1,
      tool_call: 1,
      tool_result: 1,
      usage: 1,
    })
    expect(tokenSum(r.events)).toEqual({ input: 900, output: 50, cache_read: 100, cache_write: 0 })
    expect(r.sessions[0]).toMatchObject({
      cwd: '/tmp/proj',
      model: 'deepseek-reasoner',
      title: 'Explain surface codes',
    })
    const part = join(d, 'project/global/storage/session/part/ses_fixture1/msg_a1/prt_a1a.json')
    await writeFile(
      part,
      readFileSync(part, 'utf8').replace('Surface codes are', 'Surface codes are a family'),
    )
    const later = new Date(Date.now() + 5000)
    await utimes(part, later, later)
    const r2 = await opencode.parse(file)
    const before = r.events.find((e) => e.kind === 'assistant_message')!
    const after = r2.events.find((e) => e.kind === 'assistant_message')!
    expect(after.event_key).toBe(before.event_key)
    expect(after.rev!).toBeGreaterThan(before.rev!)
    expect(after.text).toBe('Surface codes are a family')
  })
})

describeShared('opencodeAdapter (real 0.5.28 store)', () => {
  it('two sessions, each a prompt and an API error', async () => {
    const { files, results } = await parseAll(opencode, join(SHARED, 'opencode'))
    expect(files).toHaveLength(2)
    for (const r of results.values()) {
      expectWellFormed(r)
      expect(kinds(r)).toMatchObject({ user_message: 1, error: 1 })
      expect(r.sessions[0].model).toBe('deepseek-reasoner')
    }
  })
})

describe('aiderAdapter', () => {
  it('fixture: one session per run, usage from Tokens lines, growing last block left open', async () => {
    const root = join(FIXTURES, 'aider')
    const [file] = await aider.discover([root])
    const r = await aider.parse(file)
    expectWellFormed(r)
    expect(r.sessions).toHaveLength(3)
    expect(r.sessions[0]).toMatchObject({
      model: 'gpt-4o-mini',
      agent_versions: ['v0.86.1'],
      title: 'add a readme',
    })
    expect(tokenSum(r.events)).toMatchObject({ input: 2400, output: 104 })
    expect(r.events.at(-1)).toMatchObject({ kind: 'assistant_message', text: 'It prints' })
    expect(r.nextOffset).toBe(readFileSync(file.path).lastIndexOf(0x0a) + 1)
  })
})

describe('aiderAdapter: AIDER_CHAT_HISTORY_FILE', () => {
  const tmp = useTmp()

  it('finds the named history file whatever its name, and only a history file', async () => {
    const d = await tmp()
    const path = join(d, 'chat-log.md')
    await cp(join(FIXTURES, 'aider/.aider.chat.history.md'), path)
    const roots = aider.defaultRoots({ AIDER_CHAT_HISTORY_FILE: path })
    expect(roots).toEqual([path])
    const files = await aider.discover(roots)
    expect(files.map((f) => f.path)).toEqual([path])
    expect((await aider.parse(files[0])).sessions).toHaveLength(3)
    // `--path` gives every adapter the same roots: another agent's file is not aider's.
    const claude = join(FIXTURES, 'claude-code/projects/-tmp-proj')
    const other = join(claude, '11111111-2222-4333-8444-555555555555.jsonl')
    expect(await aider.discover([other])).toEqual([])
    expect(aider.defaultRoots({ AIDER_CHAT_HISTORY_FILE: 'rel/h.md' })).toEqual([
      join(process.cwd(), 'rel/h.md'),
    ])
  })
})

describeShared('aiderAdapter (real files)', () => {
  it('runs, rounded token counts, interrupted runs without assistant output', async () => {
    const { files, results } = await parseAll(aider, join(SHARED, 'aider'))
    expect(files).toHaveLength(2)
    const [meta, zen] = files.map((f) => results.get(f.path)!)
    expectWellFormed(meta)
    expect(meta.sessions).toHaveLength(1)
    expect(kinds(meta)).toMatchObject({ user_message: 12, usage: 12 })
    expect(tokenSum(meta.events).output).toBeGreaterThan(0)
    expect(zen.sessions).toHaveLength(4)
    expect(kinds(zen).assistant_message).toBeUndefined()
  })
})

describe('cursorAdapter (no real sample exists: fixtures built from the documented format)', () => {
  const root = join(FIXTURES, 'cursor')
  it('reads .txt and .jsonl agent transcripts', async () => {
    const files = await cursor.discover([root])
    expect(files).toHaveLength(2)
    const [txt, jsonl] = await Promise.all(
      files.map((f) => cursor.parse(fileOf(cursor, f.path, root))),
    )
    expectWellFormed(jsonl)
    expect(kinds(jsonl)).toEqual({
      user_message: 1,
      assistant_message: 1,
      tool_call: 1,
      system: 1,
      error: 1,
      meta: 1,
    })
    expect(jsonl.sessions[0]).toMatchObject({ source_session_id: 'c1', title: 'fix the build' })
    expectWellFormed(txt)
    expect(kinds(txt)).toEqual({
      user_message: 1,
      assistant_message: 2,
      reasoning: 1,
      tool_call: 1,
      tool_result: 1,
    })
  })
})
