import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NormalizedEvent, NormalizedSession } from '@hivemind/sdk/schemas'
import { afterEach, describe, expect } from 'vitest'
import type { AgentAdapter, ParseResult, SessionFile } from '../src/adapters/types.ts'

/** `../shared/sessions/` (real agent files, read in place), or `$HIVEMIND_SHARED_DIR/sessions`. */
function sharedSessionsDir(): string {
  const env = process.env.HIVEMIND_SHARED_DIR
  if (env) return existsSync(join(env, 'sessions')) ? join(env, 'sessions') : env
  return fileURLToPath(new URL('../../../../shared/sessions/', import.meta.url))
}

export const SHARED = sharedSessionsDir()
const present = existsSync(SHARED)
if (!present && process.env.CI === 'true') {
  throw new Error(`real session samples not found at ${SHARED} (CI=true: they are required)`)
}

/** Runs only where the real samples are present; under CI=true their absence fails above. */
export const describeShared: typeof describe.skip = present ? describe : describe.skip

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

export async function parseAll(adapter: AgentAdapter, root: string) {
  const files = await adapter.discover([root])
  const results = new Map<string, ParseResult>()
  for (const f of files) results.set(f.path, await adapter.parse(f))
  return { files, results }
}

export function fileOf(adapter: AgentAdapter, path: string, root = path): SessionFile {
  return { agent: adapter.id, path, root }
}

/** Every event and session matches the wire schema; keys are unique; order is by seq. */
export function expectWellFormed(r: ParseResult): void {
  for (const s of r.sessions) NormalizedSession.parse(s)
  for (const e of r.events) NormalizedEvent.parse(e)
  expect(new Set(r.events.map((e) => e.event_key)).size).toBe(r.events.length)
  const seqs = r.events.map((e) => e.seq)
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
}

export function kinds(r: ParseResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const e of r.events) out[e.kind] = (out[e.kind] ?? 0) + 1
  return out
}

export function tokenSum(events: ParseResult['events']) {
  const t = { input: 0, output: 0, cache_read: 0, cache_write: 0 }
  for (const e of events) {
    if (!e.usage) continue
    t.input += e.usage.input_tokens
    t.output += e.usage.output_tokens
    t.cache_read += e.usage.cache_read
    t.cache_write += e.usage.cache_write
  }
  return t
}

/** A temp dir removed after the test. */
export function useTmp(): () => Promise<string> {
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
  })
  return async () => {
    const d = await mkdtemp(join(tmpdir(), 'hivemind-adapters-'))
    dirs.push(d)
    return d
  }
}
