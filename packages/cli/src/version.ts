import pkg from '../package.json' with { type: 'json' }

/** The CLI's version (`hivemind --version`, the upload User-Agent). */
export const VERSION: string = pkg.version
