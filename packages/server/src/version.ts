import pkg from '../package.json' with { type: 'json' }

/** The server's version, as reported by `/api/v1/health`. */
export const VERSION: string = pkg.version
