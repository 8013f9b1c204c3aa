import { fileURLToPath } from 'node:url'

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/**
 * Tests import workspace packages from source, so a change is tested without a
 * rebuild; the published `exports` still point at `dist/`.
 */
export const workspaceAliases = [
  { find: /^@hivemind\/sdk\/schemas$/, replacement: src('./packages/sdk/src/schemas/index.ts') },
  { find: /^@hivemind\/sdk$/, replacement: src('./packages/sdk/src/index.ts') },
  { find: /^@hivemind\/server$/, replacement: src('./packages/server/src/index.ts') },
  { find: /^@hivemind\/test-utils$/, replacement: src('./packages/test-utils/src/index.ts') },
]

export const sharedTestOptions = {
  clearMocks: true,
  restoreMocks: true,
  unstubEnvs: true,
  unstubGlobals: true,
  testTimeout: 20_000,
  hookTimeout: 60_000,
}
