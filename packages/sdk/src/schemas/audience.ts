/**
 * The one audience normalisation used by every part of HiveMind: the URL's origin
 * plus its path, with no trailing slash, query or fragment.
 *
 * @example
 * normalizeAudience('https://hivemind.example.com/') // 'https://hivemind.example.com'
 * normalizeAudience('HTTPS://Hivemind.Example.com:443/api/?x=1') // 'https://hivemind.example.com/api'
 */
export function normalizeAudience(value: string): string {
  let url: URL
  try {
    url = new URL(value.trim())
  } catch {
    // Not a URL (e.g. a bare audience string some issuers use): compare it as given.
    return value.trim().replace(/\/+$/, '')
  }
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.origin}${path}`
}
