// `hivemind import` end to end: the real server (from source, its own process, PGlite)
// and the real CLI as child processes, homes populated from test/fixtures/.
import { existsSync, realpathSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { appendFile, mkdir, readdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHECKPOINT_DB } from '../src/tail/checkpoint-store.ts'
import { generateSessions } from './generate.ts'
import { kubernetesClaims, startOidcIssuer } from '@hivemind/test-utils'
import {
  adminPost,
  createServiceAccount,
  createToken,
  createUserPat,
  listSessions,
  runCli,
  spawnCli,
  startServer,
  tempHome,
  type ServerProcess,
  type TempHome,
} from './processes.ts'

const CLAUDE_SID = '11111111-2222-4333-8444-555555555555'

interface Summary {
  ok: boolean
  found: { files: number; sessions: number }
  agents: Record<string, { files: number; sessions: number; events: number }>
  upload: {
    batches: number
    events: number
    accepted: number
    duplicates: number
    rejected: number
  }
}

describe('hivemind import (real server and CLI processes)', () => {
  let server: ServerProcess
  let writer: { token: string; serviceAccountId: string }
  let reader: { token: string; serviceAccountId: string }
  const homes: TempHome[] = []
  const home = async (fixtures: boolean) => {
    const h = await tempHome({ fixtures })
    homes.push(h)
    return h
  }
  const envFor = (h: TempHome, token = writer.token) => ({
    ...h.env,
    HIVEMIND_ENDPOINT: server.url,
    HIVEMIND_TOKEN: token,
  })
  const stored = (owner: string) => listSessions(server.url, reader.token, owner)

  beforeAll(async () => {
    server = await startServer()
    writer = await createToken(server.url, ['write'])
    reader = await createToken(server.url, ['read'])
  }, 90_000)

  afterAll(async () => {
    await server?.kill()
    await Promise.all(homes.map((h) => h.remove()))
  })

  it.concurrent.each([
    [['import', '--bogus'], /Unknown option `--bogus`/],
    [['import', '--all', '--since', 'yesterday'], /invalid --since "yesterday"/],
    [['import', '--all', '--since', '2026-13-45'], /invalid --since "2026-13-45"/],
    [['import', '--all', '--agents', 'claude,vim'], /unknown agent "vim" in --agents/],
    [['import', '--all', '--path'], /--path/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('usage error %j → exit 2 naming it, no stack trace', async (args, message) => {
    const h = await home(false)
    const r = await runCli(args, h.env, h.cwd)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('finds no session files → exit 3; --allow-empty → exit 0', async () => {
    const h = await home(false)
    const empty = await runCli(['import', '--all'], envFor(h), h.cwd)
    expect(empty.code).toBe(3)
    expect(empty.stderr).toMatch(/no session files found/)
    const allowed = await runCli(['import', '--all', '--allow-empty'], envFor(h), h.cwd)
    expect(allowed).toMatchObject({ code: 0 })
    expect(allowed.stdout).toMatch(/no session files found/)
  })

  it('--dry-run counts per agent, uploads nothing, writes no checkpoint; default is this repo only', async () => {
    const h = await home(true)
    await mkdir(join(h.cwd, '.git'))
    // Two sessions per agent inside the repo; the fixtures' cwd (/tmp/proj) is outside.
    await generateSessions({
      claudeDir: h.claudeDir,
      codexDir: h.codexDir,
      sessions: 2,
      turns: 3,
      cwd: realpathSync(h.cwd),
    })
    const all = await runCli(['import', '--all', '--dry-run', '--json'], envFor(h), h.cwd)
    expect(all.code).toBe(0)
    const sAll = JSON.parse(all.stdout) as Summary
    expect(sAll.found.files).toBe(9)
    expect(sAll.agents).toMatchObject({
      'claude-code': { files: 4 },
      codex: { files: 3 },
      'gemini-cli': { files: 1 },
      copilot: { files: 1 },
    })
    expect(sAll.upload.events).toBe(0)

    const repo = await runCli(['import', '--dry-run'], envFor(h), h.cwd)
    expect(repo.code).toBe(0)
    expect(repo.stdout).toMatch(/dry run: found 4 session files \(4 sessions\)/)
    expect(repo.stdout).toMatch(/claude-code: 2 session files/)
    expect(repo.stdout).toMatch(/codex: 2 session files/)

    const claudeOnly = await runCli(
      ['import', '--dry-run', '--agents', 'claude', '--json'],
      envFor(h),
      h.cwd,
    )
    expect(JSON.parse(claudeOnly.stdout)).toMatchObject({ found: { files: 2 } })

    expect(existsSync(h.stateDir)).toBe(false)
    expect(await stored(writer.serviceAccountId)).toEqual([])
  })

  it('imports; a re-run finds the same files, uploads nothing and exits 0; moves and appends are followed', async () => {
    const h = await home(true)
    const first = await runCli(['import', '--all', '--json'], envFor(h), h.cwd)
    expect(first.code).toBe(0)
    const s1 = JSON.parse(first.stdout) as Summary
    expect(s1).toMatchObject({ ok: true, found: { files: 5, sessions: 4 } })
    expect(s1.upload.events).toBeGreaterThan(40)
    expect(s1.upload.rejected).toBe(0)
    expect(existsSync(join(h.stateDir, CHECKPOINT_DB))).toBe(true)
    const before = await stored(writer.serviceAccountId)
    expect(before).toHaveLength(4)

    const second = await runCli(['import', '--all'], envFor(h), h.cwd)
    expect(second.code).toBe(0)
    expect(second.stdout.trim().split('\n')).toEqual([
      'hivemind import: found 5 session files (4 sessions); all already uploaded, nothing new to send',
    ])
    // Stored counts are below events sent: Gemini rewinds are tombstones, and the Claude
    // aside fork repeats its parent's usage record (same key).
    expect(await stored(writer.serviceAccountId)).toEqual(before)

    // Codex archives a session (a move): same checkpoint, nothing re-sent.
    const day = join(h.codexDir, 'sessions', '2026', '01', '02')
    const [rollout] = await readdir(day)
    await mkdir(join(h.codexDir, 'archived_sessions'))
    await rename(join(day, rollout), join(h.codexDir, 'archived_sessions', rollout))
    // Claude finishes its partial last line and appends a turn: only those two are sent.
    const claudeFile = join(h.claudeDir, 'projects', '-tmp-proj', `${CLAUDE_SID}.jsonl`)
    const next = { parentUuid: 'u-8', cwd: '/tmp/proj', sessionId: CLAUDE_SID, type: 'user' }
    await appendFile(
      claudeFile,
      `ten"},"uuid":"u-8","timestamp":"2026-01-02T10:59:00.000Z"}\n${JSON.stringify({ ...next, message: { role: 'user', content: 'one more thing' }, uuid: 'u-9', timestamp: '2026-01-02T11:00:00.000Z' })}\n`,
    )
    const third = await runCli(['import', '--all', '--json'], envFor(h), h.cwd)
    expect(third.code).toBe(0)
    expect(JSON.parse(third.stdout)).toMatchObject({
      found: { files: 5, sessions: 4 },
      upload: { events: 2, rejected: 0 },
    })
    const sum = (xs: { event_count: number }[]) => xs.reduce((n, x) => n + x.event_count, 0)
    expect(sum(await stored(writer.serviceAccountId))).toBe(sum(before) + 2)
  })

  it('a read-scoped token cannot upload: exit 1, the 403 names the write scope', async () => {
    const h = await home(true)
    const r = await runCli(['import', '--all'], envFor(h, reader.token), h.cwd)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/403 insufficient_scope/)
    expect(r.stderr).toMatch(/`write` scope/)
    expect(await stored(reader.serviceAccountId)).toEqual([])
  })

  it.each(['/api/v1/sessions', '/api/v1/search?q=migration', '/api/v1/stats'])(
    'the write-scoped token the CLI uploads with cannot query %s: 403',
    async (path) => {
      const res = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${writer.token}` },
      })
      expect(res.status).toBe(403)
      expect(await res.json()).toMatchObject({ code: 'insufficient_scope' })
    },
  )

  it('records the server rejects fail the run (exit 1) after the summary; the checkpoint moves past them', async () => {
    // A stand-in server on loopback that stores sessions and refuses the first event of
    // every batch, as the real one does for an invalid item (HTTP 200, per item).
    const stand = createHttpServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => (body += d.toString()))
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        if (req.method === 'GET' && req.url === '/api/v1/me') {
          res.end(
            JSON.stringify({
              kind: 'service_account',
              id: 'sa_stand_in',
              name: 'stand-in',
              scopes: ['write'],
            }),
          )
          return
        }
        if (req.method !== 'POST' || req.url !== '/api/v1/sessions/batch') {
          res.writeHead(404).end('{"error":"not found","code":"not_found"}')
          return
        }
        const batch = JSON.parse(body) as { sessions: unknown[]; events: { event_key: string }[] }
        const [first, ...rest] = batch.events
        res.end(
          JSON.stringify({
            accepted: batch.sessions.length + rest.length,
            duplicates: 0,
            rejected: first
              ? [
                  {
                    kind: 'event',
                    index: 0,
                    event_key: first.event_key,
                    error: 'ts: Invalid ISO datetime',
                  },
                ]
              : [],
          }),
        )
      })
    })
    await new Promise<void>((resolve) => stand.listen(0, '127.0.0.1', resolve))
    try {
      const h = await home(true)
      const env = {
        ...envFor(h),
        HIVEMIND_ENDPOINT: `http://127.0.0.1:${(stand.address() as AddressInfo).port}`,
      }
      const first = await runCli(['import', '--all'], env, h.cwd)
      expect(first.code).toBe(1)
      expect(first.stdout).toMatch(/rejected/)
      expect(first.stderr).toMatch(/import incomplete: \d+ record\(s\) rejected by the server/)
      expect(first.stderr).toMatch(/ts: Invalid ISO datetime/)
      // Not "fix them and re-run": a re-run never sends them again, and says where they are.
      expect(first.stderr).not.toMatch(/then re-run/)
      expect(first.stderr).toMatch(
        /Rejected records are not sent again \(the checkpoint moved past/,
      )
      expect(first.stderr).toContain(`rejected table of ${join(h.stateDir, CHECKPOINT_DB)}`)
      // The checkpoint moved past the refused records: nothing is sent again.
      const again = await runCli(['import', '--all', '--json'], env, h.cwd)
      expect(again.code).toBe(0)
      expect(JSON.parse(again.stdout)).toMatchObject({
        ok: true,
        upload: { events: 0, rejected: 0 },
      })
    } finally {
      stand.closeAllConnections()
      await new Promise((resolve) => stand.close(resolve))
    }
  })

  it('names the principal in --json and, under GitHub Actions, masks the credential (on stderr, keeping stdout JSON)', async () => {
    const h = await home(true)
    const r = await runCli(
      ['import', '--all', '--json'],
      { ...envFor(h), GITHUB_ACTIONS: 'true' },
      h.cwd,
    )
    expect(r.code).toBe(0)
    const summary = JSON.parse(r.stdout) as {
      principal: { kind: string; id: string }
      warnings: string[]
    }
    expect(summary.principal).toMatchObject({
      kind: 'service_account',
      id: writer.serviceAccountId,
    })
    // No --since: the import reaches back further than Claude Code keeps transcripts.
    expect(summary.warnings).toEqual([expect.stringMatching(/cleanupPeriodDays/)])
    expect(r.stderr).toContain(`::add-mask::${writer.token}\n`)
    // Outside GitHub Actions nothing is printed about the token.
    const plain = await runCli(['import', '--all'], envFor(await home(true)), h.cwd)
    expect(plain.stdout + plain.stderr).not.toContain(writer.token)
  })

  it('a corrupt .jsonl.zst fails the run naming the file, after uploading the rest', async () => {
    const h = await home(true)
    const bad = join(
      h.codexDir,
      'sessions',
      '2026',
      '01',
      '03',
      'rollout-2026-01-03T10-00-00-019b0000-0000-7000-8000-00000000dead.jsonl.zst',
    )
    await mkdir(join(bad, '..'), { recursive: true })
    await writeFile(bad, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x01, 0x02, 0x03]))
    const r = await runCli(['import', '--all', '--json'], envFor(h), h.cwd)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${bad}: could not be read`)
    expect(r.stderr).toMatch(/1 session file\(s\) could not be read/)
    const summary = JSON.parse(r.stdout) as Summary & { failed: { files: number } }
    expect(summary.failed.files).toBe(1)
    expect(summary.upload.events).toBeGreaterThan(0)
  })

  it("a PAT's sessions land under its user", async () => {
    const pat = await createUserPat(server.url, ['write'])
    expect(pat.token).toMatch(/^hmpat_/)
    const h = await home(true)
    const r = await runCli(['import', '--all', '--json'], envFor(h, pat.token), h.cwd)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, found: { files: 5, sessions: 4 } })
    const mine = await stored(pat.userId)
    expect(mine).toHaveLength(4)
    expect(mine.map((s) => s.owner)).toEqual(Array(4).fill({ kind: 'user', id: pat.userId }))
  })

  it('exchanges an OIDC token file; a wrong audience fails naming the audience the server expects', async () => {
    const issuer = await startOidcIssuer()
    try {
      const sa = await createServiceAccount(server.url, ['write'])
      await adminPost(server.url, `/api/v1/service-accounts/${sa}/identity-providers`, {
        preset: 'kubernetes',
        issuer: issuer.issuer,
        selector: 'system:serviceaccount:agents:runner',
      })
      const h = await home(true)
      const tokenFile = join(h.root, 'token')
      const env = { ...h.env, HIVEMIND_ENDPOINT: server.url, HIVEMIND_OIDC_TOKEN_FILE: tokenFile }
      const claims = kubernetesClaims('agents', 'runner')

      await writeFile(
        tokenFile,
        await issuer.mint({ ...claims, aud: ['https://elsewhere.example'] }),
      )
      const wrong = await runCli(['import', '--all'], env, h.cwd)
      expect(wrong.code).toBe(1)
      expect(wrong.stderr).toMatch(/audience_mismatch/)
      expect(wrong.stderr).toContain(`expects audience "${server.url}"`)

      await writeFile(tokenFile, await issuer.mint({ ...claims, aud: [server.url] }))
      const right = await runCli(['import', '--all', '--json'], env, h.cwd)
      expect(right.code).toBe(0)
      expect(JSON.parse(right.stdout)).toMatchObject({ ok: true, found: { files: 5 } })
      expect(await stored(sa)).toHaveLength(4)
    } finally {
      await issuer.close()
    }
  })

  it('an unreadable directory fails the run naming it, after uploading the rest', async () => {
    const h = await home(true)
    // A link that resolves to nothing but itself (ELOOP): root cannot be denied a
    // directory by permissions, and these tests may run as root.
    const loop = join(h.claudeDir, 'projects', 'looping')
    await symlink('looping', loop)
    const r = await runCli(['import', '--all', '--json'], envFor(h), h.cwd)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${loop}: could not be read: ELOOP`)
    expect(r.stderr).toMatch(/import incomplete: 1 directory could not be read/)
    expect(r.stderr).toMatch(/Everything else was uploaded\./)
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: false,
      found: { files: 5 },
      failed: { dirs: 1 },
      upload: { rejected: 0 },
    })
    expect(await stored(writer.serviceAccountId)).not.toEqual([])
  })

  it('every session file unreadable → exit 1 naming them, not exit 3 "no session files found"', async () => {
    const h = await home(false)
    const bad = join(h.codexDir, 'sessions', '2026', '01', '03')
    await mkdir(bad, { recursive: true })
    const zst = join(
      bad,
      'rollout-2026-01-03T10-00-00-019b0000-0000-7000-8000-00000000beef.jsonl.zst',
    )
    await writeFile(zst, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x01, 0x02, 0x03]))
    const r = await runCli(['import', '--all'], envFor(h), h.cwd)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${zst}: could not be read`)
    expect(r.stderr).toMatch(/import incomplete: 1 session file\(s\) could not be read/)
    expect(r.stderr).not.toMatch(/no session files found/)
  })

  it('a batch failing while later files are read: every file not uploaded is counted', async () => {
    // A stand-in server that accepts the credential and refuses every batch (400, not
    // retried): the first batch leaves while the import is still reading the next files.
    const stand = createHttpServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        if (req.method === 'GET' && req.url === '/api/v1/me') {
          res.end(JSON.stringify({ kind: 'service_account', id: 'sa_x', name: 'x', scopes: [] }))
          return
        }
        res.writeHead(400).end('{"error":"no batches today","code":"bad_request"}')
      })
    })
    await new Promise<void>((resolve) => stand.listen(0, '127.0.0.1', resolve))
    try {
      const h = await home(false)
      // Every file holds more than one batch (1000 events): the first is sent during `add`.
      await generateSessions({
        claudeDir: h.claudeDir,
        codexDir: h.codexDir,
        sessions: 12,
        turns: 300,
        toolOutputChars: 100,
        cwd: '/srv/app',
        seed: 'count',
      })
      const env = {
        ...envFor(h),
        HIVEMIND_ENDPOINT: `http://127.0.0.1:${(stand.address() as AddressInfo).port}`,
      }
      const r = await runCli(['import', '--all', '--json'], env, h.cwd)
      expect(r.code).toBe(1)
      // Nothing was acknowledged, so none of the 24 files is uploaded.
      expect(r.stderr).toMatch(/^hivemind: upload failed \(24 of 24 session files not uploaded\)/)
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, failed: { files: 24 } })
    } finally {
      stand.closeAllConnections()
      await new Promise((resolve) => stand.close(resolve))
    }
  }, 60_000)

  it('server killed mid-import → exit 1 with one clear line; a re-run completes with no duplicates', async () => {
    const h = await home(false)
    const own = await createToken(server.url, ['write'])
    await generateSessions({
      claudeDir: h.claudeDir,
      codexDir: h.codexDir,
      sessions: 20,
      turns: 20,
      cwd: '/srv/app',
      seed: 'kill',
    })
    const dry = await runCli(['import', '--all', '--dry-run', '--json'], envFor(h), h.cwd)
    const expected = JSON.parse(dry.stdout) as Summary
    const total = Object.values(expected.agents).reduce((n, a) => n + a.events, 0)
    expect(total).toBeGreaterThan(4000)

    const run = spawnCli(['import', '--all'], envFor(h, own.token), h.cwd)
    // Kill the server once the first batch is acknowledged (a checkpoint moved).
    const db = join(h.stateDir, CHECKPOINT_DB)
    const deadline = Date.now() + 30_000
    for (;;) {
      if (existsSync(db) && committedFiles(db) > 0) break
      if (Date.now() > deadline) throw new Error('no checkpoint was committed')
      await new Promise((r) => setTimeout(r, 20))
    }
    await server.kill('SIGKILL')
    const failed = await run.done
    expect(failed.code).toBe(1)
    const lines = failed.stderr.trim().split('\n')
    expect(lines[0]).toMatch(
      /^hivemind: upload failed \(\d+ of 40 session files not uploaded\): server unreachable at http:\/\/127\.0\.0\.1:\d+/,
    )
    expect(lines.length).toBeLessThanOrEqual(2)

    server = await startServer(server.dataDir)
    const again = await runCli(['import', '--all', '--json'], envFor(h, own.token), h.cwd)
    expect(again.code).toBe(0)
    const s2 = JSON.parse(again.stdout) as Summary
    expect(s2.found.files).toBe(40)
    // Less than everything was re-sent: the acknowledged part was skipped.
    expect(s2.upload.events).toBeLessThan(total)

    const sessions = await stored(own.serviceAccountId)
    expect(sessions).toHaveLength(40)
    expect(sessions.reduce((n, s) => n + s.event_count, 0)).toBe(total)
  }, 90_000)
})

/** Files with an acknowledged offset; 0 while the CLI is still creating the store. */
function committedFiles(path: string): number {
  const c = new DatabaseSync(path, { readOnly: true, timeout: 1000 })
  try {
    const row = c.prepare('SELECT count(*) AS n FROM files WHERE committed_offset > 0').get() as {
      n: number
    }
    return row.n
  } catch {
    return 0
  } finally {
    c.close()
  }
}
