import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { zstdCompressSync } from 'node:zlib'
import { RAW_MAX_CHARS, RAW_TRUNCATION_MARKER } from '@hivemind/sdk/schemas'
import { describe, expect, it } from 'vitest'
import { useTmp } from '../../test/helpers.ts'
import { fileFingerprint, scanJsonl, scanLines, sha256Hex, type JsonLine } from './jsonl.ts'
import { FIELD_MAX_BYTES, ParseSink, capRaw, capText, capToolValue } from './normalize.ts'

describe(scanLines.name, () => {
  const tmp = useTmp()

  it('leaves a partial last line for later and completes it on the next read', async () => {
    const p = join(await tmp(), 'a.jsonl')
    await writeFile(p, '{"a":1}\r\n{"b":2}\n{"c":')
    const seen: string[] = []
    const r1 = await scanLines(p, {}, (l) => seen.push(l.text))
    expect(seen).toEqual(['{"a":1}', '{"b":2}'])
    expect(r1.nextOffset).toBe(17)
    await writeFile(p, '{"a":1}\r\n{"b":2}\n{"c":3}\n')
    const more: { text: string; index: number }[] = []
    await scanLines(p, { fromOffset: r1.nextOffset }, (l) => more.push(l))
    expect(more).toEqual([expect.objectContaining({ text: '{"c":3}', index: 2 })])
  })

  it('turns malformed lines into problems and goes on', async () => {
    const p = join(await tmp(), 'b.jsonl')
    await writeFile(p, '{"a":1}\nnot json\n\n{"b":2}\n')
    const lines: JsonLine[] = []
    await scanJsonl(p, {}, (l) => lines.push(l))
    expect(lines.map((l) => [l.index, l.value === undefined, l.problem !== undefined])).toEqual([
      [0, false, false],
      [1, true, true],
      [3, false, false],
    ])
  })

  it("names a malformed line's error by kind and position, never quoting the line", async () => {
    const p = join(await tmp(), 'e.jsonl')
    const secret = 'sk-live-0123456789abcdef'
    await writeFile(p, `${secret}\n{"token":"${secret}\n{"a":1} ${secret}\n`)
    const lines: JsonLine[] = []
    await scanJsonl(p, {}, (l) => lines.push(l))
    expect(lines.map((l) => l.problem)).toEqual([
      'invalid JSON',
      'unexpected end of input at character 34',
      'data after the JSON value at character 8',
    ])
    const sink = new ParseSink('codex', p)
    for (const l of lines) sink.badLine('s', 'main', l, `l:${l.index}`)
    const r = sink.result(0)
    for (const text of [...r.events.map((e) => e.text), ...r.errors.map((e) => e.message)]) {
      expect(text).not.toContain('sk-')
    }
    expect(r.events[0]).toMatchObject({ kind: 'error', raw: secret })
  })

  it('reads invalid UTF-8 inside a line as U+FFFD, keeping the byte offsets exact', async () => {
    const p = join(await tmp(), 'u.jsonl')
    const bad = Buffer.concat([
      Buffer.from('{"t":"a'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from('b"}\n'),
    ])
    await writeFile(p, Buffer.concat([bad, Buffer.from('{"n":2}\n')]))
    const lines: JsonLine[] = []
    const r = await scanJsonl(p, {}, (l) => lines.push(l))
    expect(lines.map((l) => l.value)).toEqual([{ t: 'a\uFFFD\uFFFDb' }, { n: 2 }])
    expect(lines[1].offset).toBe(bad.length)
    expect(r.nextOffset).toBe(bad.length + 8)
  })

  it('streams a line over the limit into a hashed stub instead of dropping it', async () => {
    const p = join(await tmp(), 'c.jsonl')
    const huge = JSON.stringify({ type: 'user', blob: 'x'.repeat(3 * 1024 * 1024) })
    await writeFile(p, `{"a":1}\n${huge}\n{"b":2}\n`)
    const lines: JsonLine[] = []
    const r = await scanJsonl(p, { maxLineBytes: 1024 * 1024 }, (l) => lines.push(l))
    expect(lines).toHaveLength(3)
    expect(lines[1].oversize?.bytes).toBe(huge.length)
    expect(lines[1].text.length).toBeLessThanOrEqual(256 * 1024)
    expect(lines[2].value).toEqual({ b: 2 })
    expect(r.nextOffset).toBe(8 + huge.length + 1 + 8)
  })

  it('reads .zst files with the same lines and fingerprint as the plain file', async () => {
    const d = await tmp()
    const text = '{"a":1}\n{"b":2}\n'
    await writeFile(join(d, 'r.jsonl'), text)
    await writeFile(join(d, 'r.jsonl.zst'), zstdCompressSync(Buffer.from(text)))
    const plain: string[] = []
    const zst: string[] = []
    await scanLines(join(d, 'r.jsonl'), {}, (l) => plain.push(l.text))
    await scanLines(join(d, 'r.jsonl.zst'), {}, (l) => zst.push(l.text))
    expect(zst).toEqual(plain)
    expect(await fileFingerprint(join(d, 'r.jsonl.zst'))).toBe(
      await fileFingerprint(join(d, 'r.jsonl')),
    )
  })

  it('has no fingerprint until the first line is complete', async () => {
    const p = join(await tmp(), 'd.jsonl')
    await writeFile(p, '{"a":')
    expect(await fileFingerprint(p)).toBeNull()
  })
})

describe(capText.name, () => {
  const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v))

  it('leaves what fits alone', () => {
    expect(capText('small')).toBe('small')
    const obj = { command: 'npm test' }
    expect(capToolValue(obj)).toBe(obj)
    expect(capToolValue(42)).toBe(42)
  })

  it('cuts by the size in JSON, with a marker giving the whole size and hash', () => {
    // Control characters escape to six bytes each.
    const text = `\u0001${'\u0001'.repeat(FIELD_MAX_BYTES)}`
    const capped = capText(text)
    expect(jsonBytes(capped)).toBeLessThanOrEqual(FIELD_MAX_BYTES)
    const [head, marker] = capped.split(RAW_TRUNCATION_MARKER)
    expect(head).toBe('\u0001'.repeat(head.length))
    expect(marker).toMatch(/^\d+ bytes sha256=[0-9a-f]{64}\]$/)
    expect(capped).toContain(`${Buffer.byteLength(text)} bytes sha256=${sha256Hex(text)}]`)
  })

  it('never splits a surrogate pair', () => {
    const capped = capText('😀'.repeat(FIELD_MAX_BYTES))
    expect(jsonBytes(capped)).toBeLessThanOrEqual(FIELD_MAX_BYTES)
    expect(capped.split(RAW_TRUNCATION_MARKER)[0]).toMatch(/^(😀)+$/)
  })

  it("turns a huge tool value into its JSON's head plus the marker", () => {
    const value = { path: '/x', lines: Array.from({ length: 200_000 }, (_, i) => `line ${i}`) }
    const capped = capToolValue(value)
    const json = JSON.stringify(value)
    expect(typeof capped).toBe('string')
    expect(jsonBytes(capped)).toBeLessThanOrEqual(FIELD_MAX_BYTES)
    expect(capped).toEqual(expect.stringMatching(/^\{"path":"\/x","lines":\["line 0"/))
    expect(capped).toContain(`${Buffer.byteLength(json)} bytes sha256=${sha256Hex(json)}]`)
  })
})

describe(capRaw.name, () => {
  it('caps raw records with a marker, size and hash', () => {
    const big = 'y'.repeat(RAW_MAX_CHARS + 10)
    const r = capRaw(big)
    expect(r.raw?.length).toBeLessThan(RAW_MAX_CHARS + 200)
    expect(r.raw).toContain(RAW_TRUNCATION_MARKER)
    expect(r.raw_oversize).toMatchObject({ bytes: RAW_MAX_CHARS + 10 })
    expect(capRaw('small')).toEqual({ raw: 'small' })
  })
})
