import type { Options } from 'tsup'

/** Shared build settings; each package spreads this and adds its entries. */
export const baseConfig = {
  format: ['esm'],
  dts: true,
  platform: 'node',
  target: 'node24',
  clean: true,
  sourcemap: true,
  splitting: false,
} satisfies Options
