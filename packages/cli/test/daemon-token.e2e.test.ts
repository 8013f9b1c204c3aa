// The daemon on an OIDC token file whose ID token stops being rotated: it pauses once the
// HiveMind JWT bought with it expires, and resumes by itself when the file is rewritten.
// The server's JWTs live at least an hour, so the daemon runs in this process with an
// injected clock the test moves forward; the server (its own process, PGlite) and the
// OIDC issuer are real, and the daemon talks to them over loopback as it would anywhere.
import { randomUUID } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { kubernetesClaims, startOidcIssuer, type LocalOidcIssuer } from '@hivemind/test-utils'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Clock } from '@hivemind/sdk'
import { Daemon } from '../src/daemon/daemon.ts'
import { createDaemonLogger } from '../src/daemon/log.ts'
import { DaemonStatus } from '../src/daemon/status.ts'
import {
  appendLines,
  claudeFile,
  claudeLine,
  daemonLog,
  eventCount,
  waitFor,
} from './daemon-helpers.ts'
import {
  adminPost,
  createServiceAccount,
  createToken,
  startServer,
  tempHome,
  type ServerProcess,
  type TempHome,
} from './processes.ts'

const HOUR_MS = 3_600_000

describe('daemon with an OIDC token file (in process, injected clock; real server and issuer)', () => {
  let server: ServerProcess
  let issuer: LocalOidcIssuer
  let sa: string
  let reader: { token: string; serviceAccountId: string }
  let h: TempHome
  let daemon: Daemon | undefined

  beforeAll(async () => {
    server = await startServer()
    issuer = await startOidcIssuer()
    reader = await createToken(server.url, ['read'])
    sa = await createServiceAccount(server.url, ['write'])
    await adminPost(server.url, `/api/v1/service-accounts/${sa}/identity-providers`, {
      preset: 'kubernetes',
      issuer: issuer.issuer,
      selector: 'system:serviceaccount:agents:runner',
    })
    h = await tempHome({ fixtures: false })
  }, 90_000)

  afterAll(async () => {
    if (daemon) await daemon.shutdown(0).catch(() => {})
    await issuer?.close()
    await server?.kill()
    if (server) await rm(server.dataDir, { recursive: true, force: true })
    await h?.remove()
  })

  it('token file not rotated past the JWT’s expiry → paused (exhausted); rewritten → resumes and uploads', async () => {
    const tokenFile = join(h.root, 'token')
    // A projected token as the kubelet writes it (5 min, with a jti): the JWT it buys is
    // clamped to the server's minimum of 1 h.
    const mint = () => issuer.mint({ ...kubernetesClaims('agents', 'runner'), aud: [server.url] })
    await writeFile(tokenFile, await mint())

    let skewMs = 0
    const clock: Clock = {
      now: () => Date.now() + skewMs,
      monotonicNow: () => performance.now() + skewMs,
    }
    const sid = randomUUID()
    const file = claudeFile(h.claudeDir, sid)
    await appendLines(file, [claudeLine(sid, 0), claudeLine(sid, 1)])
    let written = 2
    const count = () => eventCount(server.url, reader.token, sa, sid)

    daemon = await Daemon.start({
      stateDir: h.stateDir,
      endpoint: server.url,
      // No HIVEMIND_TOKEN: the chain falls through to the token file.
      env: { ...h.env, HIVEMIND_OIDC_TOKEN_FILE: tokenFile },
      watchPaths: [],
      home: h.root,
      logger: createDaemonLogger(join(h.stateDir, 'daemon.log')),
      clock,
      timings: {
        batchWindowMs: 50,
        rescanMs: 300,
        heartbeatMs: 300,
        backoffMs: 100,
        maxBackoffMs: 1000,
        pausedRetryMs: 300,
      },
    })
    expect((await daemon.verifyCredential()).me).toMatchObject({
      kind: 'service_account',
      id: sa,
    })
    expect(await daemon.flush(30_000)).toMatchObject({ drained: true })
    expect(await count()).toBe(written)
    const first = DaemonStatus.parse(daemon.status())
    expect(first).toMatchObject({
      state: 'running',
      paused: false,
      token: { source: 'token-file', kind: 'bearer', state: 'valid' },
    })
    const firstExpiry = Date.parse(first.token!.expires_at!)
    expect(firstExpiry - Date.now()).toBeGreaterThan(HOUR_MS - 60_000)

    // Two hours later by the daemon's clock, the file still holds the same ID token: the
    // JWT has expired and the source has nothing fresh to exchange.
    skewMs = 2 * HOUR_MS
    await appendLines(file, [claudeLine(sid, 2, 'written while paused')])
    written++
    const paused = await waitFor('the daemon to pause', () => {
      const s = daemon!.status()
      return s.paused ? s : undefined
    })
    expect(DaemonStatus.parse(paused)).toMatchObject({
      state: 'paused',
      paused: true,
      pause_reason: expect.stringMatching(/already exchanged.*waiting for a fresh ID token/),
      token: { state: 'exhausted' },
      failing_since: expect.any(String),
    })
    expect(await daemon.flush(1000)).toMatchObject({ drained: false })
    expect(await count()).toBe(written - 1)
    expect(
      daemonLog(h.stateDir).some((r) => r.msg === 'paused: the subject token is exhausted'),
    ).toBe(true)

    // The kubelet rotates the file: the daemon exchanges the fresh token by itself and
    // sends what was written meanwhile, then what comes after.
    await writeFile(tokenFile, await mint())
    await waitFor(
      'the daemon to resume',
      () => {
        const s = daemon!.status()
        return !s.paused && s.state === 'running' && s.pending.files === 0
      },
      30_000,
    )
    expect(await count()).toBe(written)
    await appendLines(file, [claudeLine(sid, 3, 'after the rotation')])
    written++
    expect(await daemon.flush(30_000)).toMatchObject({ drained: true })
    expect(await count()).toBe(written)
    const resumed = DaemonStatus.parse(daemon.status())
    expect(resumed).toMatchObject({
      state: 'running',
      paused: false,
      pause_reason: null,
      failing_since: null,
      token: { source: 'token-file', state: 'valid' },
    })
    // The new JWT's expiry is on the daemon's (moved) clock, past the old one.
    expect(Date.parse(resumed.token!.expires_at!)).toBeGreaterThan(firstExpiry + HOUR_MS)
    expect(
      daemonLog(h.stateDir).some((r) => r.msg === 'resumed: a fresh ID token was exchanged'),
    ).toBe(true)

    const result = await daemon.shutdown(10_000)
    daemon = undefined
    expect(result).toMatchObject({ drained: true })
  }, 120_000)
})
