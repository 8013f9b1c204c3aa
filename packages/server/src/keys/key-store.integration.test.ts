import { SignJWT, decodeProtectedHeader, generateKeyPair, type JWK } from 'jose'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  BACKENDS,
  SECRET_KEY,
  backendAvailable,
  useBackendDb,
  manualClock,
  openMemoryDb,
} from '../../test/helpers.js'
import { migrate } from '../db/migrate.js'
import { DbKeyStore, RETIRED_KEY_GRACE_S } from './key-store.js'

const config = (
  over: Partial<{ secretKey: string; signingAlg: 'ES256' | 'EdDSA'; publicUrl: string }> = {},
) => ({
  publicUrl: 'https://hivemind.test',
  secretKey: undefined as string | undefined,
  signingAlg: 'ES256' as const,
  ...over,
})

describe.each(BACKENDS)(`${DbKeyStore.name} on %s`, (backend) => {
  describe.skipIf(!backendAvailable(backend))('when the database is available', () => {
    const suite = useBackendDb(backend)
    beforeEach(async () => {
      await suite.db.query('DELETE FROM signing_keys')
    })

    it('creates one key at first start, signs and verifies', async () => {
      const clock = manualClock()
      const keys = await DbKeyStore.open({ db: suite.db, config: config(), clock })
      const again = await DbKeyStore.open({ db: suite.db, config: config(), clock })
      expect((await suite.db.query('SELECT kid FROM signing_keys')).rows).toHaveLength(1)
      const { token, exp, jti, kid } = await keys.sign(
        { sub: 'sa_1', scope: 'write', name: 'ci' },
        3600,
      )
      expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', kid, typ: 'at+jwt' })
      const claims = await again.verify(token)
      expect(claims).toMatchObject({
        iss: 'https://hivemind.test',
        aud: 'https://hivemind.test',
        sub: 'sa_1',
        scope: 'write',
        name: 'ci',
        jti,
        exp,
      })
      expect(exp - claims.iat!).toBe(3600)
    })

    it('rejects expired, foreign, unsigned and garbage tokens', async () => {
      const clock = manualClock()
      const keys = await DbKeyStore.open({ db: suite.db, config: config(), clock })
      const { token } = await keys.sign({ sub: 'sa_1', scope: 'read' }, 600)
      clock.advance(606)
      await expect(keys.verify(token)).rejects.toMatchObject({
        code: 'ERR_INVALID_TOKEN',
        message: 'token has expired',
      })

      const other = await DbKeyStore.open({
        db: await openMemoryDb().then(async (m) => (await migrate(m), m)),
        config: config(),
        clock,
      })
      const foreign = (await other.sign({ sub: 'sa_1', scope: 'read' }, 600)).token
      await expect(keys.verify(foreign)).rejects.toMatchObject({
        message: 'token was not signed by a key of this server',
      })

      const wrongIss = await DbKeyStore.open({
        db: suite.db,
        config: config({ publicUrl: 'https://evil.test' }),
        clock,
      })
      const t2 = (await wrongIss.sign({ sub: 'sa_1', scope: 'read' }, 600)).token
      await expect(keys.verify(t2)).rejects.toMatchObject({
        message: expect.stringMatching(/claim check failed: iss/),
      })

      const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'x' })).toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`
      await expect(keys.verify(none)).rejects.toMatchObject({
        message: 'token uses an algorithm this server does not sign with',
      })
      await expect(keys.verify('garbage')).rejects.toMatchObject({
        message: 'token is not a valid JWT',
      })

      const { privateKey } = await generateKeyPair('ES256')
      const kid = (await keys.jwks()).keys[0].kid!
      const forged = await new SignJWT({ scope: 'write' })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .setIssuer('https://hivemind.test')
        .setAudience('https://hivemind.test')
        .setSubject('sa_1')
        .setIssuedAt()
        .setJti('j')
        .setExpirationTime('1h')
        .sign(privateKey)
      await expect(keys.verify(forged)).rejects.toMatchObject({
        message: 'token signature is invalid',
      })
    })

    it('rotates: old tokens still verify and old keys stay published until their tokens expired', async () => {
      const clock = manualClock()
      const keys = await DbKeyStore.open({
        db: suite.db,
        config: config({ signingAlg: 'EdDSA' }),
        clock,
      })
      const old = await keys.sign({ sub: 'sa_1', scope: 'read' }, 86_400)
      const { kid } = await keys.rotate()
      expect(kid).not.toBe(old.kid)
      const fresh = await keys.sign({ sub: 'sa_1', scope: 'read' }, 600)
      expect(fresh.kid).toBe(kid)
      expect((await keys.jwks()).keys.map((k: JWK) => k.kid)).toEqual([kid, old.kid])
      await expect(keys.verify(old.token)).resolves.toMatchObject({ sub: 'sa_1' })

      clock.advance(86_400 - 10)
      await expect(keys.verify(old.token)).resolves.toMatchObject({ sub: 'sa_1' })
      clock.advance(RETIRED_KEY_GRACE_S - 86_400 + 20)
      expect((await keys.jwks()).keys.map((k: JWK) => k.kid)).toEqual([kid])
      await expect(keys.verify(old.token)).rejects.toMatchObject({ code: 'ERR_INVALID_TOKEN' })
    })

    it('reloads on an unknown kid: another replica rotated', async () => {
      const clock = manualClock()
      const a = await DbKeyStore.open({ db: suite.db, config: config(), clock })
      const b = await DbKeyStore.open({ db: suite.db, config: config(), clock })
      await b.rotate()
      const t = await b.sign({ sub: 'sa_1', scope: 'write' }, 600)
      await expect(a.verify(t.token)).resolves.toMatchObject({ sub: 'sa_1' })
    })

    it('encrypts private keys at rest when HIVEMIND_SECRET_KEY is set', async () => {
      const clock = manualClock()
      const keys = await DbKeyStore.open({
        db: suite.db,
        config: config({ secretKey: SECRET_KEY }),
        clock,
      })
      const { rows } = await suite.db.query<{
        private_key: string
        encrypted: boolean
        public_jwk: unknown
      }>('SELECT private_key, encrypted, public_jwk FROM signing_keys')
      expect(rows).toHaveLength(1)
      expect(rows[0].encrypted).toBe(true)
      expect(rows[0].private_key).toMatch(/^v1\./)
      expect(rows[0].private_key).not.toContain('"d"')
      expect(JSON.stringify(rows[0].public_jwk)).not.toContain('"d"')
      const { token } = await keys.sign({ sub: 'sa_1', scope: 'write' }, 600)
      expect((await keys.jwks()).keys[0]).not.toHaveProperty('d')

      await expect(
        DbKeyStore.open({
          db: suite.db,
          config: config({ secretKey: 'another-secret-key-that-is-long-enough' }),
          clock,
        }),
      ).rejects.toMatchObject({
        code: 'ERR_KEY_DECRYPTION',
        message: expect.stringMatching(
          /cannot be decrypted: HIVEMIND_SECRET_KEY is not the key it was encrypted with$/,
        ),
      })
      await expect(
        DbKeyStore.open({ db: suite.db, config: config(), clock }),
      ).rejects.toMatchObject({
        code: 'ERR_KEY_DECRYPTION',
        message: expect.stringMatching(/is encrypted but HIVEMIND_SECRET_KEY is not set/),
      })
      // Verification needs only public keys.
      const reopened = await DbKeyStore.open({
        db: suite.db,
        config: config({ secretKey: SECRET_KEY }),
        clock,
      })
      await expect(reopened.verify(token)).resolves.toMatchObject({ sub: 'sa_1' })
    })

    it('refuses lifetimes above 24 h', async () => {
      const keys = await DbKeyStore.open({ db: suite.db, config: config(), clock: manualClock() })
      await expect(keys.sign({ sub: 'sa_1', scope: 'read' }, 86_401)).rejects.toThrow(RangeError)
    })
  })
})
