import { defineConfig } from 'tsup'

// The action runs from a tag of this repository with no install step, so everything
// (the CLI included) is bundled into the committed step/dist. Bundled CommonJS
// dependencies call require() for Node built-ins: give the ESM bundle one.
export default defineConfig({
  entry: {
    main: 'src/main.ts',
    post: 'src/post.ts',
    hivemind: '../cli/src/index.ts',
  },
  outDir: '../../step/dist',
  format: ['esm'],
  outExtension: () => ({ js: '.mjs' }),
  platform: 'node',
  target: 'node24',
  clean: true,
  splitting: false,
  sourcemap: false,
  dts: false,
  minify: false,
  noExternal: [/.*/],
  removeNodeProtocol: false,
  banner: {
    js: "import { createRequire as __hmCreateRequire } from 'node:module'; const require = __hmCreateRequire(import.meta.url);",
  },
})
