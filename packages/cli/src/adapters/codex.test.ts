import { readFileSync } from 'node:fs'
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { zstdCompressSync } from 'node:zlib'
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
import { codexAdapter as codex } from './codex.ts'

const ID = '019b0000-0000-7000-8000-000000000001'
const REL = `sessions/2026/01/02/rollout-2026-01-02T11-00-00-${ID}.jsonl`

/** Oracle: the last cumulative total in a file (input, cached, output). */
function lastTotal(path: string, upToLine = Infinity) {
  let t = { input: 0, cached: 0, output: 0 }
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((l, i) => {
      if (!l || i >= upToLine) return
      const o = JSON.parse(l)
      const u = o.payload?.type === 'token_count' ? o.payload.info?.total_token_usage : undefined
      if (u) t = { input: u.input_tokens, cached: u.cached_input_tokens, output: u.output_tokens }
    })
  return t
}

describe('codexAdapter (fixtures)', () => {
  const root = join(FIXTURES, 'codex')
  const tmp = useTmp()

  it('honours CODEX_HOME and finds rollouts under sessions/', async () => {
    expect(codex.defaultRoots({ CODEX_HOME: '/x/codex' })).toEqual(['/x/codex'])
    expect(codex.defaultRoots({}, '/home/a')).toEqual(['/home/a/.codex'])
    expect((await codex.discover([root])).map((f) => f.path)).toEqual([join(root, REL)])
  })

  it('normalises a rollout: mirrors skipped, cumulative tokens → deltas, bad and unknown lines kept', async () => {
    const path = join(root, REL)
    const r = await codex.parse(fileOf(codex, path, root))
    expectWellFormed(r)
    expect(kinds(r)).toEqual({
      meta: 3,
      system: 1,
      user_message: 1,
      tool_call: 1,
      tool_result: 1,
      assistant_message: 1,
      usage: 2,
      error: 1,
    })
    expect(r.errors).toHaveLength(1)
    expect(
      r.events.find((e) => e.kind === 'meta' && e.text?.includes('quantum_state')),
    ).toBeDefined()
    expect(r.events.find((e) => e.kind === 'tool_result')?.tool).toMatchObject({
      name: 'shell',
      call_id: 'call_1',
    })
    // 1000/200/50 then 2500/1200/80, the repeated last line adds nothing.
    expect(tokenSum(r.events)).toEqual({
      input: 1300,
      output: 80,
      cache_read: 1200,
      cache_write: 0,
    })
    expect(r.nextOffset).toBe(readFileSync(path).lastIndexOf(0x0a) + 1)
    expect(r.sessions).toEqual([
      expect.objectContaining({
        source_session_id: ID,
        cwd: '/tmp/proj',
        git_branch: 'main',
        model: 'gpt-5-codex',
        title: 'list the files',
        host: 'codex_cli_rs',
      }),
    ])
  })

  it('gives the same keys for .jsonl.zst and for a move to archived_sessions/', async () => {
    const d = await tmp()
    const plain = await codex.parse(fileOf(codex, join(root, REL), root))
    await mkdir(join(d, 'archived_sessions'), { recursive: true })
    const name = REL.split('/').at(-1)!
    const text = readFileSync(join(root, REL))
    await writeFile(
      join(d, 'archived_sessions', `${name}.zst`),
      zstdCompressSync(text.subarray(0, text.lastIndexOf(0x0a) + 1)),
    )
    const files = await codex.discover([d])
    expect(files).toHaveLength(1)
    const zst = await codex.parse(files[0])
    expect(zst.events.map((e) => e.event_key)).toEqual(plain.events.map((e) => e.event_key))
    // A plain file next to its .zst wins (the compressor has not deleted it yet).
    await copyFile(join(root, REL), join(d, 'archived_sessions', name))
    expect((await codex.discover([d])).map((f) => f.path)).toEqual([
      join(d, 'archived_sessions', name),
    ])
  })

  it('emits only lines after fromOffset, keeping deltas right', async () => {
    const path = join(root, REL)
    const full = await codex.parse(fileOf(codex, path, root))
    const cut = full.events.find((e) => e.kind === 'assistant_message')!.src!.offset!
    const tail = await codex.parse(fileOf(codex, path, root), { fromOffset: cut })
    expect(tail.events.map((e) => e.event_key)).toEqual(
      full.events.filter((e) => e.src!.offset! >= cut).map((e) => e.event_key),
    )
    expect(tokenSum(tail.events).input).toBe(1500 - 1000)
  })

  it('reads the legacy pre-envelope format (fixture built from the documented shape)', async () => {
    const r = await codex.parse(
      fileOf(
        codex,
        join(
          FIXTURES,
          'codex-legacy/rollout-2025-05-07T17-24-21-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl',
        ),
      ),
    )
    expectWellFormed(r)
    expect(r.sessions[0]).toMatchObject({
      source_session_id: '5973b6c0-94b8-487b-a530-2aeb6098ae0e',
      git_branch: 'main',
    })
    expect(kinds(r)).toEqual({ meta: 3, user_message: 1, assistant_message: 1 })
  })
})

describeShared('codexAdapter (real files in ../shared/sessions/codex)', () => {
  const root = join(SHARED, 'codex')
  const parse = (rel: string) => codex.parse(fileOf(codex, join(root, rel), root))

  it('parses all rollouts well-formed; deltas add up to the last cumulative total', async () => {
    const { files, results } = await parseAll(codex, root)
    expect(files).toHaveLength(8)
    for (const f of files) {
      const r = results.get(f.path)!
      expectWellFormed(r)
      expect(r.errors).toEqual([])
      expect(r.sessions).toHaveLength(1)
      expect(
        r.events.some((e) =>
          ['event_msg/agent_message', 'event_msg/user_message'].includes(e.native_type ?? ''),
        ),
      ).toBe(false)
      if (r.sessions[0].relation) continue
      const t = lastTotal(f.path)
      expect(tokenSum(r.events)).toMatchObject({
        input: t.input - t.cached,
        cache_read: t.cached,
        output: t.output,
      })
    }
  })

  it('a 0.36 resume file does not repeat the original history', async () => {
    const orig = await parse('0.36.0_resume/original__cpolar-9cd28a74.jsonl')
    const resumed = await parse('0.36.0_resume/resumed-copy__cpolar-613a9a68.jsonl')
    expect(resumed.sessions[0]).toMatchObject({
      source_session_id: '613a9a68-8816-40b2-a2d4-041ade599da6',
      relation: 'resume',
      parent_source_session_id: '9cd28a74-da7e-4458-a91a-fffec2be9d7a',
      parent_session_key: orig.sessions[0].session_key,
      model: 'gpt-5-codex',
    })
    // Own session_meta + one marker for the 191 inherited lines; nothing else.
    expect(resumed.events.map((e) => e.native_type)).toEqual(['session_meta', 'replayed_history'])
    expect(tokenSum(resumed.events).input).toBe(0)
    expect(orig.events.filter((e) => e.kind === 'user_message')).toHaveLength(2)
  })

  it('a subagent fork links its parent and skips the copied parent history', async () => {
    const rel = '0.119.0-alpha_codex-desktop_subagent-fork__idaho-019d924b.jsonl'
    const r = await parse(rel)
    expect(r.sessions[0]).toMatchObject({
      relation: 'subagent',
      parent_source_session_id: '019d9249-e0ee-7020-a305-b6369cd02251',
      host: 'Codex Desktop',
      cwd: 'C:\\Users\\loganf\\Documents\\IDAHO-VAULT',
    })
    // Lines 2-18 are the parent's; the fork's own turn starts at line 19 (index 18).
    const own = r.events.filter(
      (e) => e.native_type !== 'session_meta' && e.native_type !== 'replayed_history',
    )
    expect(Math.min(...own.map((e) => e.seq))).toBe(18)
    expect(r.events.find((e) => e.kind === 'user_message')?.text).toMatch(/^Inspect the runtime/)
    const total = lastTotal(join(root, rel))
    const atFork = lastTotal(join(root, rel), 18)
    expect(tokenSum(r.events).output).toBe(total.output - atFork.output)
  })

  it('an empty 4-line session: no user turn, cli 0.0.0', async () => {
    const r = await parse('0.0.0-source-unknown_empty-session__blubber-019c531e.jsonl')
    expect(r.events).toHaveLength(4)
    expect(kinds(r).user_message).toBeUndefined()
    expect(r.sessions[0]).toMatchObject({
      agent_versions: ['0.0.0'],
      source_session_id: '019c531e-a79b-7fb2-8563-95a15808ed0d',
    })
  })
})
