import { defineProject } from 'vitest/config'
import { sharedTestOptions, workspaceAliases } from '../../vitest.shared.ts'

// The action end to end: the committed bundle (step/dist) under a mini runner, against
// real server, issuer and daemon processes (see test/runner.ts).
export default defineProject({
  resolve: { alias: workspaceAliases },
  test: { ...sharedTestOptions, name: 'action', include: ['test/**/*.test.ts'] },
})
