import { defineProject } from 'vitest/config'
import { sharedTestOptions, workspaceAliases } from '../../vitest.shared.ts'

export default defineProject({
  resolve: { alias: workspaceAliases },
  test: { ...sharedTestOptions, name: 'cli' },
})
