import { defineConfig } from 'tsup'
import { baseConfig } from '../../tsup.config.base.ts'

export default defineConfig({
  ...baseConfig,
  entry: {
    index: 'src/index.ts',
    health: 'src/health-main.ts',
    'adapters/index': 'src/adapters/index.ts',
  },
  // `node:sqlite` exists only with its prefix; tsup would strip it to a bare `sqlite`.
  removeNodeProtocol: false,
  // Chunks, so a dynamic import (the MCP SDK, only for `hivemind mcp`) stays lazy.
  splitting: true,
})
