import { cp } from 'node:fs/promises'
import { defineConfig } from 'tsup'
import { baseConfig } from '../../tsup.config.base.ts'

export default defineConfig({
  ...baseConfig,
  entry: { index: 'src/index.ts', main: 'src/main.ts' },
  publicDir: false,
  // Migrations are read from disk at runtime; ship them beside the bundle (dist/db/migrations).
  async onSuccess() {
    await cp('src/db/migrations', 'dist/db/migrations', { recursive: true })
  },
})
