import { defineConfig } from 'tsup'
import { baseConfig } from '../../tsup.config.base.ts'

export default defineConfig({
  ...baseConfig,
  entry: { index: 'src/index.ts', main: 'src/main.ts' },
  // Migrations are read from disk at runtime; ship them beside the bundle.
  publicDir: false,
})
