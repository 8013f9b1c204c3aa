import { defineConfig } from 'tsup'
import { baseConfig } from '../../tsup.config.base.ts'

export default defineConfig({
  ...baseConfig,
  // TypeScript apps that still require() are among the SDK's users.
  format: ['esm', 'cjs'],
  entry: { index: 'src/index.ts', 'schemas/index': 'src/schemas/index.ts' },
})
