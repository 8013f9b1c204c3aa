/**
 * Real PostgreSQL and Redis for integration tests. `scripts/with-services.sh`
 * starts them and exports these variables. Locally a test may skip when a service
 * is absent; under `CI=true` a missing service fails the run instead.
 */
export function testDatabaseUrl(): string | undefined {
  return process.env.HIVEMIND_TEST_DATABASE_URL || undefined
}

export function testRedisUrl(): string | undefined {
  return process.env.HIVEMIND_TEST_REDIS_URL || undefined
}

/**
 * Returns true when the service is there. When it is not: throws under CI, so the
 * run fails rather than skips; otherwise returns false so the caller can skip.
 */
export function requireService(name: 'postgres' | 'redis'): boolean {
  const present = name === 'postgres' ? testDatabaseUrl() : testRedisUrl()
  if (present) return true
  if (process.env.CI === 'true') {
    throw new Error(
      `${name} is required under CI=true but HIVEMIND_TEST_${name === 'postgres' ? 'DATABASE' : 'REDIS'}_URL is not set: run the tests through \`pnpm test\` (scripts/with-services.sh)`,
    )
  }
  return false
}
