import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
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
import { createGeminiCliAdapter, geminiCliAdapter as gemini } from './gemini-cli.ts'

const FIX = join(FIXTURES, 'gemini-cli')
const CHAT = join(FIX, 'tmp/proj/chats/session-2026-01-02T10-00-9e1b2c3d.jsonl')
/** JSONL revs are the header's `lastUpdated` (ms) plus the line index. */
const BASE = Date.parse('2026-01-02T10:00:00.000Z')

describe('geminiCliAdapter (fixtures)', () => {
  const tmp = useTmp()

  it('honours GEMINI_CLI_HOME as the home directory', async () => {
    expect(gemini.defaultRoots({ GEMINI_CLI_HOME: '/x' })).toEqual(['/x/.gemini'])
    expect(gemini.defaultRoots({}, '/home/a')).toEqual(['/home/a/.gemini'])
    expect((await gemini.discover([FIX])).map((f) => f.path)).toEqual([CHAT])
  })

  it('re-appended ids: last wins with rev; $rewindTo → tombstones; $set summary → title', async () => {
    const r = await gemini.parse(fileOf(gemini, CHAT, FIX))
    expectWellFormed(r)
    expect(r.errors).toHaveLength(1) // the malformed line
    const byText = (t: string) => r.events.find((e) => e.text === t)
    expect(r.events.filter((e) => e.kind === 'tool_call')).toHaveLength(1)
    expect(r.events.find((e) => e.kind === 'tool_call')).toMatchObject({
      rev: BASE + 4,
      tool: { name: 'run_shell_command', call_id: 'c1' },
    })
    expect(byText('check the db')).toMatchObject({ kind: 'user_message', rev: BASE + 1 })
    // g-u2 and g-a3 (and g-a3's usage) were rewound.
    const tomb = r.events.filter((e) => e.tombstone)
    expect(tomb.map((e) => e.kind).sort()).toEqual(['assistant_message', 'usage', 'user_message'])
    expect(tomb.every((e) => e.rev === BASE + 9)).toBe(true)
    // usage of the surviving messages only: g-a1 (1000-400, 10+5) + g-a2 (1200-1000, 20)
    expect(tokenSum(r.events.filter((e) => !e.tombstone))).toEqual({
      input: 800,
      output: 35,
      cache_read: 1400,
      cache_write: 0,
    })
    expect(r.events.find((e) => e.text?.includes('unknown record'))).toBeDefined()
    expect(r.sessions[0]).toMatchObject({
      cwd: '/tmp/proj',
      title: 'Check the database',
      model: 'gemini-3-flash-preview',
    })
    expect(r.nextOffset).toBe(readFileSync(CHAT).lastIndexOf(0x0a) + 1)
  })

  it('a later read emits only what changed after the offset, with higher revs', async () => {
    const full = await gemini.parse(fileOf(gemini, CHAT, FIX))
    const rewind = full.events.find((e) => e.tombstone)!
    const fromOffset = readFileSync(CHAT).indexOf('{"id":"g-u2"')
    const tail = await gemini.parse(fileOf(gemini, CHAT, FIX), { fromOffset })
    expect(tail.events.some((e) => e.event_key === rewind.event_key && e.tombstone)).toBe(true)
    expect(tail.events.some((e) => e.text === 'check the db')).toBe(false)
  })

  it('a .jsonl resuming a legacy .json outranks it: re-appended copies and rewinds win', async () => {
    const d = await tmp()
    const dir = join(d, 'tmp/abc/chats')
    await mkdir(dir, { recursive: true })
    const sessionId = 'aaaabbbb-0000-4000-8000-000000000015'
    const msg = (id: string, content: string, at: string) => ({
      id,
      timestamp: `2026-03-01T10:00:${at}.000Z`,
      type: 'user',
      content,
    })
    const legacy = join(dir, 'session-2026-03-01T10-00-aaaabbbb.json')
    await writeFile(
      legacy,
      JSON.stringify({
        sessionId,
        projectHash: 'abc',
        startTime: '2026-03-01T10:00:00.000Z',
        lastUpdated: '2026-03-01T10:00:30.000Z',
        messages: [msg('m1', 'first', '01'), msg('m2', 'second', '20')],
      }),
    )
    // Resumed a day later: the history is re-appended, then the user rewinds to m2.
    const resumed = join(dir, 'session-2026-03-02T09-00-aaaabbbb.jsonl')
    const lines = [
      {
        sessionId,
        projectHash: 'abc',
        startTime: '2026-03-01T10:00:00.000Z',
        lastUpdated: '2026-03-02T09:00:00.000Z',
        kind: 'main',
      },
      msg('m1', 'first', '01'),
      msg('m2', 'second', '20'),
      { $rewindTo: 'm2' },
    ]
    await writeFile(resumed, lines.map((l) => `${JSON.stringify(l)}\n`).join(''))
    const fast = createGeminiCliAdapter({ quietMs: 0 })
    const old = await fast.parse(fileOf(fast, legacy, d))
    const now = await fast.parse(fileOf(fast, resumed, d))
    expectWellFormed(now)
    const oldRev = new Map(old.events.map((e) => [e.event_key, e.rev!]))
    const m2 = now.events.find((e) => e.tombstone)!
    expect(m2).toMatchObject({ kind: 'user_message' })
    expect(m2.rev).toBeGreaterThan(oldRev.get(m2.event_key)!)
    const m1 = now.events.find((e) => e.text === 'first')!
    expect(m1.rev).toBeGreaterThan(oldRev.get(m1.event_key)!)
  })

  it('$rewindTo after a $set.messages checkpoint tombstones that message and the later ones', async () => {
    const dir = join(await tmp(), 'tmp/abc/chats')
    await mkdir(dir, { recursive: true })
    const path = join(dir, 'session-2026-03-01T10-00-ccccdddd.jsonl')
    const msg = (id: string, type: string, content: string, s: string) => ({
      id,
      timestamp: `2026-03-01T10:00:${s}.000Z`,
      type,
      content,
    })
    const m1 = msg('m1', 'user', 'first', '01')
    const m2 = msg('m2', 'gemini', 'second', '02')
    const m3 = msg('m3', 'user', 'third', '03')
    const lines = [
      {
        sessionId: 'ccccdddd-0000-4000-8000-000000000016',
        projectHash: 'abc',
        startTime: '2026-03-01T10:00:00.000Z',
        lastUpdated: '2026-03-01T10:00:00.000Z',
        kind: 'main',
      },
      m1,
      m2,
      m3,
      // Gemini writes the whole list after compression or a rolled-back turn.
      { $set: { messages: [m1, m2, m3], lastUpdated: '2026-03-01T10:00:04.000Z' } },
      { $rewindTo: 'm2' },
    ]
    await writeFile(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''))
    const r = await gemini.parse(fileOf(gemini, path))
    expectWellFormed(r)
    const dead = r.events.filter((e) => e.tombstone)
    expect(dead.map((e) => e.kind).sort()).toEqual(['assistant_message', 'user_message'])
    expect(dead.every((e) => e.rev === Date.parse('2026-03-01T10:00:00.000Z') + 5)).toBe(true)
    expect(r.events.filter((e) => !e.tombstone).map((e) => e.text)).toEqual(['first'])
  })

  it('names a subagent session by its parent and short id, so equal short ids stay apart', async () => {
    const d = await tmp()
    const parents = ['11111111-aaaa-4000-8000-000000000001', '22222222-bbbb-4000-8000-000000000002']
    const results = []
    for (const parent of parents) {
      const dir = join(d, 'tmp/proj/chats', parent)
      await mkdir(dir, { recursive: true })
      const path = join(dir, 'ab12cd.jsonl')
      const lines = [
        {
          sessionId: 'ab12cd',
          projectHash: 'other-hash',
          startTime: '2026-03-01T10:00:00.000Z',
          lastUpdated: '2026-03-01T10:00:00.000Z',
          kind: 'subagent',
          directories: ['/tmp/proj'],
        },
        { id: 's1', timestamp: '2026-03-01T10:00:01.000Z', type: 'user', content: 'look around' },
      ]
      await writeFile(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''))
      results.push(await gemini.parse(fileOf(gemini, path, d)))
    }
    for (const [i, r] of results.entries()) {
      expectWellFormed(r)
      expect(r.sessions[0]).toMatchObject({
        source_session_id: `${parents[i]}/ab12cd`,
        parent_source_session_id: parents[i],
        relation: 'subagent',
      })
      expect(r.events.every((e) => e.session_key === r.sessions[0].session_key)).toBe(true)
    }
    expect(results[0].sessions[0].session_key).not.toBe(results[1].sessions[0].session_key)

    // Legacy `.json` subagent chats are named the same way.
    const legacyDir = join(d, 'tmp/proj/chats', parents[0])
    const legacy = join(legacyDir, 'ef34gh.json')
    await writeFile(
      legacy,
      JSON.stringify({
        sessionId: 'ef34gh',
        projectHash: 'other-hash',
        startTime: '2026-03-01T10:00:00.000Z',
        lastUpdated: '2026-03-01T10:00:02.000Z',
        kind: 'subagent',
        messages: [],
      }),
    )
    const fast = createGeminiCliAdapter({ quietMs: 0 })
    const old = await fast.parse(fileOf(fast, legacy, d))
    expect(old.sessions[0]).toMatchObject({
      source_session_id: `${parents[0]}/ef34gh`,
      parent_source_session_id: parents[0],
    })
  })

  it('a .jsonl of nothing but garbage still yields its error events, under a session named by the file', async () => {
    const dir = join(await tmp(), 'tmp', 'h', 'chats')
    await mkdir(dir, { recursive: true })
    const path = join(dir, 'session-2026-01-05T10-00-garbage1.jsonl')
    await writeFile(path, 'not json at all\n{"half": \n')
    const r = await gemini.parse(fileOf(gemini, path))
    expectWellFormed(r)
    expect(r.sessions).toHaveLength(1)
    expect(r.events.map((e) => e.kind)).toEqual(['error', 'error'])
    expect(r.events.every((e) => e.session_key === r.sessions[0].session_key)).toBe(true)
    expect(r.errors).toHaveLength(2)
    expect(r.nextOffset).toBe(Buffer.byteLength('not json at all\n{"half": \n'))
  })

  it('legacy .json: waits for a quiet file and retries a half-written one', async () => {
    const d = await tmp()
    const dir = join(d, 'tmp/abc/chats')
    await mkdir(dir, { recursive: true })
    const path = join(dir, 'session-2026-01-02T10-00-12345678.json')
    const doc = JSON.stringify(
      {
        sessionId: '12345678-aaaa',
        projectHash: 'abc',
        startTime: '2026-01-02T10:00:00.000Z',
        lastUpdated: '2026-01-02T10:00:05.000Z',
        messages: [
          { id: 'x1', timestamp: '2026-01-02T10:00:01.000Z', type: 'user', content: 'hello' },
        ],
      },
      null,
      2,
    )
    const fast = createGeminiCliAdapter({ quietMs: 0, retries: 1, retryDelayMs: 1 })
    await writeFile(path, '')
    const empty = await fast.parse(fileOf(fast, path, d))
    expect(empty.events).toEqual([])
    expect(empty.errors[0]?.message).toMatch(/will retry/)
    await writeFile(path, doc.slice(0, 60))
    expect((await fast.parse(fileOf(fast, path, d))).errors).toHaveLength(1)
    await writeFile(path, doc)
    const ok = await fast.parse(fileOf(fast, path, d))
    expect(ok.events).toEqual([
      expect.objectContaining({
        kind: 'user_message',
        text: 'hello',
        rev: Date.parse('2026-01-02T10:00:05.000Z'),
      }),
    ])
  })
})

describeShared('geminiCliAdapter (real files in ../shared/sessions/gemini-cli)', () => {
  const root = join(SHARED, 'gemini-cli')

  it('parses all chats well-formed, one event set per final message revision', async () => {
    const { files, results } = await parseAll(gemini, root)
    expect(files).toHaveLength(3)
    for (const f of files) {
      const r = results.get(f.path)!
      expectWellFormed(r)
      expect(r.errors).toEqual([])
    }
  })

  it('JSONL v0.39+: 7 re-appended ids collapse, tokens counted per final message', async () => {
    const path = join(
      root,
      'jsonl-v0.39+/tmp/ticketing-vc/chats/session-2026-04-25T08-23-e435870b.jsonl',
    )
    const r = await gemini.parse(fileOf(gemini, path, root))
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id?: string; tokens?: { input: number; cached: number } })
    const last = new Map<string, { tokens?: { input: number; cached: number } }>()
    for (const o of lines) if (o.id) last.set(o.id, o)
    expect(lines.filter((o) => o.id).length - last.size).toBe(7)
    expect(
      r.events.filter(
        (e) =>
          e.native_type !== undefined &&
          e.kind !== 'usage' &&
          e.event_key &&
          ['user_message', 'assistant_message', 'system', 'error'].includes(e.kind),
      ),
    ).toHaveLength(last.size)
    let input = 0
    for (const m of last.values()) if (m.tokens) input += m.tokens.input - m.tokens.cached
    expect(tokenSum(r.events).input).toBe(input)
    expect(r.sessions[0]).toMatchObject({
      source_session_id: 'e435870b-a192-4f84-bd7e-1ec28e9c2f31',
      cwd: 'c:\\beta-project\\vibe engineering\\ticketing-vc',
    })
  })

  it('legacy JSON in a hash dir', async () => {
    const path = join(
      root,
      'legacy-json_hash-dir/tmp/f528f00f72f21423df709bb5104dfe181c28474fac473cf1028c3bfd64be534a/chats/session-2026-03-28T08-40-2e81cbf2.json',
    )
    const r = await gemini.parse(fileOf(gemini, path, root))
    expect(kinds(r)).toEqual({ user_message: 2, reasoning: 2, assistant_message: 2, usage: 2 })
    expect(r.sessions[0]).toMatchObject({
      source_session_id: '2e81cbf2-dad5-4c0d-b6ff-366805fd90ad',
      model: 'gemini-2.5-pro',
      started_at: '2026-03-28T08:40:15.454Z',
    })
  })
})
