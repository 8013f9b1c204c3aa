import { BlockList, isIP } from 'node:net'

/**
 * `::ffff:127.0.0.1` → `127.0.0.1`. Dual-stack sockets report IPv4 peers in this
 * mapped form, and an IPv4 CIDR must still match them.
 */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  return mapped ? mapped[1] : address
}

/**
 * A set of IPv4/IPv6 networks (`10.0.0.0/8`, `::1`, `fd00::/8`), matched against a
 * socket peer address. An empty list matches nothing: trust is never implied.
 *
 * @example
 * const trusted = new AddressList(['127.0.0.1/32', '::1'])
 * trusted.has('::ffff:127.0.0.1') // true
 */
export class AddressList {
  readonly #list = new BlockList()
  readonly entries: readonly string[]

  constructor(entries: readonly string[]) {
    this.entries = entries
    for (const entry of entries) {
      const [addr = '', prefix] = entry.split('/')
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
      // A bare entry is one host: /32 or /128 (not Grafana's "/32 for everything").
      const bits = prefix === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefix)
      const mapped = normalizeAddress(addr)
      if (mapped !== addr) this.#list.addSubnet(mapped, Math.max(0, bits - 96), 'ipv4')
      else this.#list.addSubnet(addr, bits, family)
    }
  }

  /** Whether `address` (a socket peer, possibly IPv4-mapped) is inside one of the networks. */
  has(address: string | undefined): boolean {
    if (!address || this.entries.length === 0) return false
    const a = normalizeAddress(address)
    const family = isIP(a)
    if (family === 0) return false
    return this.#list.check(a, family === 6 ? 'ipv6' : 'ipv4')
  }
}
