// Shapes of HiveMind and OIDC credentials. Anything a server or proxy echoes back is
// passed through this before it reaches an error message, so a misbehaving peer
// cannot leak a token into logs through us.
const SECRET_PATTERNS = [
  /eyJ[\w-]*\.[\w-]*\.[\w-]*/g, // compact JWS / JWT
  /\b(?:hmsa|hmpat)_[\w-]{8,}/g,
  /\bhm-[\w-]{16,}/g,
  /\bhms-[\w-]{16,}/g,
]

/** Replaces anything that looks like a credential with `[redacted]`. */
export function redact(text: string): string {
  let out = text
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, '[redacted]')
  return out
}

/** A URL without query or fragment, which may carry secrets (`?token=`). */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.origin}${parsed.pathname}`
  } catch {
    return url.split(/[?#]/)[0] ?? ''
  }
}
