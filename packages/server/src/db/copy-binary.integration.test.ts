import { beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS, backendAvailable, useBackendDb } from '../../test/helpers.js'
import { BinaryCopyWriter, CopyValueError, isoToPgMicros } from './copy-binary.js'

// Each value goes in twice: through Db.copyIn in the binary form BinaryCopyWriter writes,
// and through an INSERT of its text form, parsed by PostgreSQL itself. The stored values
// must be identical.
const TIMESTAMPS = [
  '2026-04-25T08:23:24.509Z',
  '2026-04-25T08:23:24Z',
  '2026-04-25T08:23:24.5Z',
  '2025-09-05T15:01:35.871234Z',
  '2025-09-05T15:01:35.000001Z',
  '2025-09-05T15:01:35.123456789Z',
  '2025-09-05T15:01:35.999999900Z',
  '2026-01-15T10:00:00.25+05:30',
  '2026-01-15T23:59:59.75-08:00',
  '1999-12-31T23:59:59.999999Z',
  '1969-07-20T20:17:40.0005Z',
  '2000-01-01T00:00:00Z',
]
const TEXTS = [
  '',
  'plain',
  'tabs\tnew\nlines\r and \\ backslashes "quotes"',
  'ünïcødé — 日本語 — emoji 🐝🐝',
  'x'.repeat(1_500_000) + '🐝', // larger than one 1 MiB chunk, ending on a surrogate pair
]
const JSONS = ['"a string"', '{"cmd":["ls","-la"],"ok":true,"n":1.5}', '[]', 'null', '"🐝\\n"']
const INTS = [0, 1, -1, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, '9223372036854775807']

describe.each(BACKENDS)('binary COPY on %s', (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    const suite = useBackendDb(backend, { migrated: false })
    beforeAll(async () => {
      await suite.db.exec(
        `CREATE TABLE copy_probe (k text, t text, j jsonb, n bigint, b boolean, ts timestamptz)`,
      )
    })

    type Value = string | number | boolean | null

    /** Stores `values` both ways; returns the ones whose two copies differ (none, hopefully). */
    async function mismatches(column: 't' | 'j' | 'n' | 'b' | 'ts', values: Value[], cast: string) {
      const w = new BinaryCopyWriter()
      values.forEach((v, i) => {
        w.row(6).text(`${column}-${i}`)
        for (const c of ['t', 'j', 'n', 'b', 'ts'] as const) {
          if (c !== column || v == null) w.null()
          else if (c === 't') w.text(v as string)
          else if (c === 'j') w.jsonb(v as string)
          else if (c === 'n') w.int8(v as number)
          else if (c === 'b') w.bool(v as boolean)
          else w.timestamptz(v as string)
        }
      })
      expect(await suite.db.copyIn('copy_probe (k, t, j, n, b, ts)', w.finish())).toBe(
        values.length,
      )
      const differ: string[] = []
      for (const [i, v] of values.entries()) {
        const { rows } = await suite.db.query<{ same: boolean; got: string | null }>(
          `SELECT ${column} IS NOT DISTINCT FROM $1::${cast} AS same, left(${column}::text, 60) AS got
             FROM copy_probe WHERE k = $2`,
          [v == null ? null : String(v), `${column}-${i}`],
        )
        if (!rows[0].same) differ.push(`${String(v).slice(0, 60)} stored as ${rows[0].got}`)
      }
      return differ
    }

    it('stores timestamps as PostgreSQL parses them: offsets, micro and nanoseconds', async () => {
      expect(await mismatches('ts', [...TIMESTAMPS, null], 'timestamptz')).toEqual([])
    })
    it('stores text byte for byte, across chunk boundaries', async () => {
      expect(await mismatches('t', [...TEXTS, null], 'text')).toEqual([])
    })
    it('stores jsonb, scalars included', async () => {
      expect(await mismatches('j', [...JSONS, null], 'jsonb')).toEqual([])
    })
    it('stores bigints to the full 64-bit range', async () => {
      expect(await mismatches('n', [...INTS, null], 'bigint')).toEqual([])
    })
    it('stores booleans', async () => {
      expect(await mismatches('b', [true, false, null], 'boolean')).toEqual([])
    })

    it('stores nothing when a row breaks a constraint', async () => {
      await suite.db.exec('CREATE TABLE copy_unique (k text PRIMARY KEY)')
      const w = new BinaryCopyWriter()
      for (const k of ['a', 'b', 'a']) w.row(1).text(k)
      await expect(suite.db.copyIn('copy_unique (k)', w.finish())).rejects.toMatchObject({
        code: '23505',
      })
      const { rows } = await suite.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM copy_unique',
      )
      expect(rows[0].n).toBe(0)
    })
  })
})

describe(isoToPgMicros.name, () => {
  it('counts from 2000-01-01 UTC and keeps sub-millisecond digits', () => {
    expect(isoToPgMicros('2000-01-01T00:00:00Z')).toBe(0n)
    expect(isoToPgMicros('2000-01-01T00:00:00.000001Z')).toBe(1n)
    expect(isoToPgMicros('1999-12-31T23:59:59.9999995Z')).toBe(0n)
  })
  it('refuses what is not a timestamp, by a typed error', () => {
    expect(() => isoToPgMicros('yesterday')).toThrow(CopyValueError)
  })
})
