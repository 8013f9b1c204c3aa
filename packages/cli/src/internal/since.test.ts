import { describe, expect, it } from 'vitest'
import { parseSince } from './since.js'

const NOW = Date.parse('2026-11-26T12:00:00.000Z')

describe(parseSince.name, () => {
  it.each([
    ['30m', '2026-11-26T11:30:00.000Z'],
    ['2h', '2026-11-26T10:00:00.000Z'],
    ['1d', '2026-11-25T12:00:00.000Z'],
    ['1w', '2026-11-19T12:00:00.000Z'],
    ['2026-01-15', '2026-01-15T00:00:00.000Z'],
    ['2026-01-15T08:00:00+02:00', '2026-01-15T06:00:00.000Z'],
  ])('%s → %s', (value, iso) => {
    expect(new Date(parseSince(value, NOW)).toISOString()).toBe(iso)
  })

  it.each(['yesterday', '1y', '-1d', '2026-02-30', '2026-1-5', '15/01/2026', ''])(
    'rejects %j with a usage error naming --since',
    (value) => {
      expect(() => parseSince(value, NOW)).toThrow(
        expect.objectContaining({ exitCode: 2, message: expect.stringMatching(/--since/) }),
      )
    },
  )
})
