/**
 * Exchange the platform's ID token for a HiveMind JWT and ask the server who we are.
 *
 * Run inside a GitHub Actions job (with `permissions: id-token: write`), a Modal
 * container, or a pod with a projected token at /var/run/secrets/hivemind/token:
 *
 *   HIVEMIND_ENDPOINT=https://hivemind.example.com npx tsx examples/sdk/exchange-and-call.ts
 */
import { HiveMindClient, TokenManager, defaultChain, isHiveMindError } from '@hivemind/sdk'

const manager = new TokenManager({ provider: defaultChain({ logger: console }) })
manager.on('state', ({ state, error }) => {
  if (state === 'exhausted') console.warn(`sync paused: ${error?.message}`)
})

const client = new HiveMindClient({ auth: { tokenManager: manager } })

try {
  const me = await client.me()
  console.log(
    `authenticated as ${me.kind} ${me.name} (${me.id}) with scopes ${me.scopes.join(',')}`,
  )
} catch (error) {
  if (isHiveMindError(error)) {
    console.error(`${error.code}: ${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`)
    process.exitCode = 1
  } else {
    throw error
  }
} finally {
  manager.close()
}
