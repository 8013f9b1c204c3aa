import { readFileSync } from 'node:fs'
import { copyFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
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
import { RAW_TRUNCATION_MARKER } from '@hivemind/sdk/schemas'
import { claudeCodeAdapter as claude } from './claude-code.ts'
import { sha256Hex } from './jsonl.ts'
import { FIELD_MAX_BYTES } from './normalize.ts'

const SID = '11111111-2222-4333-8444-555555555555'

/** Oracle: usage per distinct (message.id, requestId), the largest output wins. */
function usageOracle(paths: string[]) {
  const byKey = new Map<string, { out: number; input: number }>()
  for (const p of paths) {
    for (const l of readFileSync(p, 'utf8').split('\n')) {
      if (!l) continue
      const o = JSON.parse(l)
      const u = o.type === 'assistant' ? o.message?.usage : undefined
      if (!u || !o.message?.id) continue
      const k = `${o.message.id}|${o.requestId ?? ''}`
      const prev = byKey.get(k)
      if (!prev || prev.out < u.output_tokens)
        byKey.set(k, { out: u.output_tokens, input: u.input_tokens })
    }
  }
  let out = 0
  for (const v of byKey.values()) out += v.out
  return { pairs: byKey.size, out }
}

describe('claudeCodeAdapter (fixtures)', () => {
  const root = join(FIXTURES, 'claude-code')
  const tmp = useTmp()

  it('honours CLAUDE_CONFIG_DIR and finds main and subagent files, not sidecars', async () => {
    expect(claude.defaultRoots({ CLAUDE_CONFIG_DIR: '/x/claude' })).toEqual(['/x/claude'])
    expect(claude.defaultRoots({}, '/home/a')).toEqual(['/home/a/.claude'])
    const files = await claude.discover([root])
    expect(files.map((f) => f.path.slice(root.length))).toEqual([
      `/projects/-tmp-proj/${SID}/subagents/agent-aside_question-0123456789abcdef.jsonl`,
      `/projects/-tmp-proj/${SID}.jsonl`,
    ])
  })

  it('normalises a session: partial last line left, malformed line → error, unknown type → meta', async () => {
    const path = join(root, `projects/-tmp-proj/${SID}.jsonl`)
    const r = await claude.parse(fileOf(claude, path, root))
    expectWellFormed(r)
    const size = readFileSync(path).length
    const lastNl = readFileSync(path).lastIndexOf(0x0a) + 1
    expect(r.nextOffset).toBe(lastNl)
    expect(r.nextOffset).toBeLessThan(size)
    expect(r.errors).toHaveLength(1)
    expect(kinds(r)).toEqual({
      summary: 2,
      user_message: 1,
      reasoning: 1,
      assistant_message: 1,
      tool_call: 1,
      tool_result: 1,
      usage: 1,
      error: 1,
      meta: 1,
      compaction: 1,
    })
    expect(r.events.find((e) => e.kind === 'meta')?.text).toContain('hologram-record')
    expect(r.events.find((e) => e.kind === 'tool_result')?.tool).toMatchObject({
      name: 'Bash',
      call_id: 'toolu_1',
    })
    // Three lines repeat the same usage of one response: counted once.
    expect(tokenSum(r.events)).toEqual({
      input: 10,
      output: 50,
      cache_read: 1000,
      cache_write: 100,
    })
    expect(r.sessions).toEqual([
      expect.objectContaining({
        source_session_id: SID,
        cwd: '/tmp/proj',
        git_branch: 'main',
        model: 'claude-sonnet-4-6',
        title: 'Fixture summary title',
        agent_versions: ['2.1.90', '2.1.91'],
        host: 'cli',
        started_at: '2026-01-02T10:00:00.000Z',
        ended_at: '2026-01-02T10:05:01.000Z',
      }),
    ])
  })

  it('continues from nextOffset once the partial line is complete, with the same keys', async () => {
    const d = await tmp()
    const src = join(root, `projects/-tmp-proj/${SID}.jsonl`)
    const path = join(d, `${SID}.jsonl`)
    await copyFile(src, path)
    const first = await claude.parse(fileOf(claude, path, d))
    await writeFile(
      path,
      `${readFileSync(src, 'utf8')}ten"},"uuid":"u-8","timestamp":"2026-01-02T10:06:00.000Z"}\n`,
    )
    const next = await claude.parse(fileOf(claude, path, d), { fromOffset: first.nextOffset })
    expect(next.events).toHaveLength(1)
    expect(next.events[0]).toMatchObject({
      kind: 'user_message',
      text: 'still being written',
      seq: 10,
    })
    const again = await claude.parse(fileOf(claude, path, d))
    expect(again.events.map((e) => e.event_key)).toEqual([
      ...first.events.map((e) => e.event_key),
      next.events[0].event_key,
    ])
  })

  it('keeps fork copies apart by thread but counts their shared usage once', async () => {
    const { results } = await parseAll(claude, root)
    const all = [...results.values()].flatMap((r) => r.events)
    const aside = all.filter((e) => e.thread === 'aside_question-0123456789abcdef')
    expect(aside.length).toBeGreaterThan(0)
    // u-1 exists in both files: two events, two keys.
    expect(
      new Set(
        all
          .filter((e) => e.kind === 'user_message' && e.text === 'fix the build')
          .map((e) => e.event_key),
      ).size,
    ).toBe(2)
    // msg_A appears in both files: one usage key; msg_B only in the fork.
    const usageKeys = new Set(all.filter((e) => e.kind === 'usage').map((e) => e.event_key))
    expect(usageKeys.size).toBe(2)
    const sessions = [...results.values()].flatMap((r) => r.sessions)
    expect(new Set(sessions.map((s) => s.session_key)).size).toBe(1)
  })

  it('caps a 10 MB line with a marker and hash and parses on', async () => {
    const d = await tmp()
    const path = join(d, `${SID}.jsonl`)
    const output = 'z'.repeat(10 * 1024 * 1024)
    const big = JSON.stringify({
      type: 'user',
      sessionId: SID,
      uuid: 'big',
      timestamp: '2026-01-02T10:00:00.000Z',
      message: {
        role: 'user',
        content: [{ type: 'tool_result', tool_use_id: 't', content: output }],
      },
    })
    await writeFile(
      path,
      `${big}\n${readFileSync(join(root, `projects/-tmp-proj/${SID}.jsonl`), 'utf8')}`,
    )
    const r = await claude.parse(fileOf(claude, path, d))
    expectWellFormed(r)
    const e = r.events[0]
    expect(e.kind).toBe('tool_result')
    expect(e.raw_oversize?.bytes).toBe(big.length)
    expect(e.raw).toContain('hivemind:truncated')
    // The tool output is capped too: one event can never outgrow an upload body.
    expect(Buffer.byteLength(JSON.stringify(e))).toBeLessThan(2 * FIELD_MAX_BYTES)
    expect(e.tool?.output).toEqual(expect.stringMatching(/^z+…\[hivemind:truncated /))
    expect(e.tool?.output).toContain(
      `${RAW_TRUNCATION_MARKER}${output.length} bytes sha256=${sha256Hex(output)}]`,
    )
  })

  it('caps huge text and tool input the same way', async () => {
    const d = await tmp()
    const path = join(d, `${SID}.jsonl`)
    // Quotes and newlines double in JSON: the cap counts the escaped size.
    const text = '"\n'.repeat(2 * 1024 * 1024)
    const input = { file_path: '/tmp/x', content: 'é'.repeat(3 * 1024 * 1024) }
    const line = {
      type: 'assistant',
      sessionId: SID,
      uuid: 'big-a',
      timestamp: '2026-01-02T10:00:00.000Z',
      message: {
        id: 'msg_big',
        role: 'assistant',
        model: 'claude-sonnet-4-6',
        content: [
          { type: 'text', text },
          { type: 'tool_use', id: 'toolu_big', name: 'Write', input },
        ],
      },
    }
    await writeFile(path, `${JSON.stringify(line)}\n`)
    const r = await claude.parse(fileOf(claude, path, d))
    expectWellFormed(r)
    const [msg, call] = r.events
    expect(Buffer.byteLength(JSON.stringify(msg.text))).toBeLessThanOrEqual(FIELD_MAX_BYTES)
    expect(msg.text).toContain(`${Buffer.byteLength(text)} bytes sha256=${sha256Hex(text)}]`)
    expect(Buffer.byteLength(JSON.stringify(call.tool?.input))).toBeLessThanOrEqual(FIELD_MAX_BYTES)
    const json = JSON.stringify(input)
    expect(call.tool?.input).toEqual(expect.stringMatching(/^\{"file_path":"\/tmp\/x"/))
    expect(call.tool?.input).toContain(
      `${Buffer.byteLength(json)} bytes sha256=${sha256Hex(json)}]`,
    )
  })

  it('an API error written as an assistant message (isApiErrorMessage) is an error event', async () => {
    const d = await tmp()
    const path = join(d, `${SID}.jsonl`)
    // Shape of a real v2.1.111 line (claude-desktop, prompt too long), trimmed.
    const lines = [
      {
        parentUuid: null,
        isSidechain: false,
        type: 'user',
        message: { role: 'user', content: 'summarise the vault' },
        uuid: 'e-1',
        timestamp: '2026-04-19T15:27:28.000Z',
        sessionId: SID,
        cwd: '/tmp/proj',
        version: '2.1.111',
      },
      {
        parentUuid: 'e-1',
        isSidechain: false,
        type: 'assistant',
        uuid: 'e-2',
        timestamp: '2026-04-19T15:27:29.514Z',
        message: {
          id: 'ea4ee34e-7143-4f41-83f4-707226a1a72c',
          model: '<synthetic>',
          role: 'assistant',
          stop_reason: 'stop_sequence',
          type: 'message',
          usage: { input_tokens: 0, output_tokens: 0 },
          content: [{ type: 'text', text: 'Prompt is too long' }],
        },
        error: 'invalid_request',
        isApiErrorMessage: true,
        apiErrorStatus: 400,
        sessionId: SID,
        cwd: '/tmp/proj',
        version: '2.1.111',
      },
    ]
    await writeFile(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''))
    const r = await claude.parse(fileOf(claude, path, d))
    expectWellFormed(r)
    expect(r.events.find((e) => e.native_type === 'assistant')).toMatchObject({
      kind: 'error',
      text: 'Prompt is too long',
    })
    expect(kinds(r)).toEqual({ user_message: 1, error: 1, usage: 1 })
    // The synthetic model is not the session's model.
    expect(r.sessions[0].model).toBeNull()
  })

  it('a custom title (user rename) beats the AI title, whichever comes first', async () => {
    const d = await tmp()
    const custom = { type: 'custom-title', customTitle: 'My rename', sessionId: SID }
    const ai = { type: 'ai-title', aiTitle: 'Fix the build pipeline', sessionId: SID }
    for (const order of [
      [ai, custom],
      [custom, ai],
    ]) {
      const path = join(d, `${SID}.jsonl`)
      await writeFile(path, order.map((l) => `${JSON.stringify(l)}\n`).join(''))
      const r = await claude.parse(fileOf(claude, path, d))
      expectWellFormed(r)
      expect(kinds(r)).toEqual({ title: 2 })
      expect(r.sessions[0].title).toBe('My rename')
    }
    const path = join(d, `${SID}.jsonl`)
    await writeFile(path, `${JSON.stringify(ai)}\n`)
    expect((await claude.parse(fileOf(claude, path, d))).sessions[0].title).toBe(
      'Fix the build pipeline',
    )
  })
})

describeShared('claudeCodeAdapter (real files in ../shared/sessions/claude-code)', () => {
  const root = join(SHARED, 'claude-code')
  const p = (rel: string) => join(root, rel)
  const parse = (rel: string) => claude.parse(fileOf(claude, p(rel), root))

  it('discovers the transcripts, not history.jsonl, tool-results or meta.json', async () => {
    const files = await claude.discover([root])
    expect(files).toHaveLength(11)
    expect(
      files.some(
        (f) =>
          /^history\.jsonl|\.meta\.json$/.test(basename(f.path)) ||
          f.path.includes('/tool-results/'),
      ),
    ).toBe(false)
  })

  it('parses every file well-formed, with usage once per (message.id, requestId)', async () => {
    const { files, results } = await parseAll(claude, root)
    for (const f of files) {
      const r = results.get(f.path)!
      expectWellFormed(r)
      expect(r.errors).toEqual([])
      expect(r.nextOffset).toBe(readFileSync(f.path).length)
      const oracle = usageOracle([f.path])
      const usage = r.events.filter((e) => e.kind === 'usage')
      expect(usage).toHaveLength(oracle.pairs)
      expect(tokenSum(usage).output).toBe(oracle.out)
    }
  })

  it('summary lines mid-file and compaction boundary (v2.0.2)', async () => {
    const r = await parse(
      'v2.0.2_compact-boundary_summary-lines_huge-line__bradymholt-354b2588.jsonl',
    )
    expect(r.sessions).toHaveLength(1)
    expect(r.sessions[0]).toMatchObject({
      source_session_id: '354b2588-2a5c-43d7-b678-e95a4a87bd2a',
      cwd: '/Users/bholt/dev/evergreen',
      git_branch: 'two-step-sync',
    })
    expect(kinds(r)).toMatchObject({ summary: 4, compaction: 1 })
    const boundary = r.events.findIndex((e) => e.kind === 'compaction')
    expect(r.events[boundary + 1]).toMatchObject({ kind: 'summary', native_type: 'user' })
    // Streamed v2.0 lines grow: 5, 5, 245 output tokens for one response → 245.
    expect(r.events.filter((e) => e.kind === 'usage').length).toBe(10)
  })

  it('a summary-only file is a session named by its file, without timestamps', async () => {
    const r = await parse('v2.0.2_summary-only-file__bradymholt-7c32ec94.jsonl')
    expect(r.sessions).toHaveLength(1)
    expect(r.sessions[0]).toMatchObject({
      title: 'Refactoring Date Loop for Goal Calculation Optimization',
      started_at: null,
    })
    expect(kinds(r)).toEqual({ summary: 2 })
  })

  it('the three subagent layouts are threads of the parent session', async () => {
    const inline = await parse('v2.0.2_inline-sidechain-lines__bradymholt-b6076239.jsonl')
    expect(new Set(inline.events.map((e) => e.thread))).toEqual(new Set(['main', 'sidechain']))
    expect(inline.sessions.map((s) => s.source_session_id)).toEqual([
      'b6076239-b6a8-42a2-8a61-9d0390bdcf3b',
    ])

    const root2 = await parse('v2.0.65_root-level-agent-file__bradymholt-agent-a05b3d3.jsonl')
    expect(root2.sessions.map((s) => s.source_session_id)).toEqual([
      'd385a3e4-c335-4c48-bd0a-8662018e3475',
    ])
    expect(new Set(root2.events.map((e) => e.thread))).toEqual(new Set(['a05b3d3']))

    const main = await parse(
      'v2.1.78-to-2.1.85_worktree-dir_progress-records_version-change/856dc1c3-2233-4bdb-bf16-b533c4b3e275.jsonl',
    )
    const sub = await parse(
      'v2.1.78-to-2.1.85_worktree-dir_progress-records_version-change/856dc1c3-2233-4bdb-bf16-b533c4b3e275/subagents/agent-a6dbac2033c36a0a5.jsonl',
    )
    expect(sub.sessions[0].session_key).toBe(main.sessions[0].session_key)
    expect(new Set(sub.events.map((e) => e.thread))).toEqual(new Set(['a6dbac2033c36a0a5']))
    expect(main.sessions[0]).toMatchObject({
      agent_versions: ['2.1.78', '2.1.85'],
      cwd: '/Users/xuwentao/Projects/tele/paas-controller/.claude/worktrees/elegant-margulis',
      host: 'claude-desktop',
    })
  })

  it('aside_question fork: 75 shared uuids stay distinct, shared usage is counted once', async () => {
    const dir = 'v2.1.97_aside-question-fork/8fd119a6-9ab8-407b-810f-329cfb6153e0'
    const main = await parse(`${dir}.jsonl`)
    const aside = await parse(`${dir}/subagents/agent-aside_question-ac9ee4804d56a951.jsonl`)
    const mainKeys = new Set(main.events.map((e) => e.event_key))
    expect(aside.events.filter((e) => e.kind !== 'usage' && mainKeys.has(e.event_key))).toEqual([])
    const usage = new Set(
      [...main.events, ...aside.events].filter((e) => e.kind === 'usage').map((e) => e.event_key),
    )
    const oracle = usageOracle([
      p(`${dir}.jsonl`),
      p(`${dir}/subagents/agent-aside_question-ac9ee4804d56a951.jsonl`),
    ])
    expect(usage.size).toBe(oracle.pairs)
    expect(oracle.pairs).toBe(24)
  })

  it('two compactions on Windows / claude-desktop; acompact worker is a thread', async () => {
    const r = await parse('v2.1.111_windows_claude-desktop_two-compactions__idaho-5c04fe06.jsonl')
    expect(kinds(r)).toMatchObject({ compaction: 2, summary: 2 })
    expect(r.sessions[0]).toMatchObject({
      cwd: 'C:\\Users\\loganf\\Documents\\IDAHO-VAULT',
      host: 'claude-desktop',
    })
    const ac = await parse(
      'v2.1.87_acompact-subagent__idaho-82e1012b-agent-acompact-b4141f3ee6fdaa69.jsonl',
    )
    expect(new Set(ac.events.map((e) => e.thread))).toEqual(new Set(['acompact-b4141f3ee6fdaa69']))
    expect(ac.sessions[0].source_session_id).toBe('82e1012b-54e9-4d8d-acb1-a8038a75c2e0')
  })

  it('re-reading from a mid-file offset yields the tail with the same keys', async () => {
    const rel = 'v2.1.111_windows_claude-desktop_two-compactions__idaho-5c04fe06.jsonl'
    const full = await parse(rel)
    const mid = full.events[Math.floor(full.events.length / 2)].src!.offset!
    const tail = await claude.parse(fileOf(claude, p(rel), root), { fromOffset: mid })
    const fullKeys = new Set(full.events.map((e) => e.event_key))
    expect(tail.events.length).toBeGreaterThan(0)
    expect(tail.events.every((e) => fullKeys.has(e.event_key))).toBe(true)
  })
})
