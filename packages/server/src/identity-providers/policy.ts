import { Environment, type ASTNode, type ParseResult } from '@marcbachmann/cel-js'
import { RE2JS } from 're2js'

/** Longest policy accepted (characters). */
export const MAX_POLICY_LENGTH = 4096
/** Largest claim set a policy is evaluated over (bytes of JSON). */
export const MAX_POLICY_INPUT_BYTES = 64 * 1024
/** How deeply comprehension macros may nest (each level multiplies the work). */
const MAX_MACRO_NESTING = 2
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter'])
/** Keys that reach JavaScript internals; dropped from the policy input. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const FORBIDDEN_KEY_TEXT = [...FORBIDDEN_KEYS].map((k) => JSON.stringify(k))

/**
 * cel-js runs `matches` on the native RegExp engine, where `^(a+)+$` blocks the
 * event loop for seconds, and its overload cannot be replaced. Policies are
 * therefore rewritten at compile time to call `re2Matches`, backed by re2js
 * (linear time, RE2 syntax: no backreferences or lookaround).
 */
const env = new Environment({
  limits: {
    maxAstNodes: 1000,
    maxDepth: 32,
    maxListElements: 100,
    maxMapEntries: 100,
    maxCallArguments: 8,
  },
})
  .registerVariable('claims', 'map')
  .registerFunction('string.re2Matches(string): bool', (s: string, pattern: string) =>
    compileRe2(pattern).matcher(s).find(),
  )

const re2Cache = new Map<string, RE2JS>()
function compileRe2(pattern: string): RE2JS {
  let re = re2Cache.get(pattern)
  if (!re) {
    re = RE2JS.compile(pattern)
    if (re2Cache.size > 500) re2Cache.clear()
    re2Cache.set(pattern, re)
  }
  return re
}

/** A policy rejected at save time; `message` is the parser's or checker's. */
export class PolicyCompileError extends Error {
  readonly code = 'ERR_POLICY_INVALID'
  constructor(message: string) {
    super(message)
    this.name = 'PolicyCompileError'
  }
}

/** A policy ready to evaluate. */
export interface CompiledPolicy {
  readonly source: string
  /** Top-level claim names the expression reads (`claims.x`, `claims["x"]`), for explain. */
  readonly claimNames: readonly string[]
  readonly program: ParseResult
}

/** Outcome of {@link evaluatePolicy}: only a result of exactly `true` allows. */
export type PolicyOutcome =
  { allow: true; value: true } | { allow: false; value?: unknown; error?: string }

type Node = ASTNode & { op: string; args: unknown; range: { start: number; end: number } }

function children(node: Node): Node[] {
  const out: Node[] = []
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit)
    else if (v && typeof v === 'object' && 'op' in v) out.push(v as Node)
  }
  visit(node.args)
  return out
}

/**
 * Parses, rewrites and type-checks a policy. Throws PolicyCompileError with the
 * parser's message when it is invalid, cannot return a bool, or uses a regular
 * expression that RE2 rejects.
 */
export function compilePolicy(source: string): CompiledPolicy {
  if (source.length > MAX_POLICY_LENGTH) {
    throw new PolicyCompileError(`policy is longer than ${MAX_POLICY_LENGTH} characters`)
  }
  let parsed: ParseResult
  try {
    parsed = env.parse(source)
  } catch (err) {
    throw new PolicyCompileError(celMessage(err, true))
  }
  const edits: { start: number; end: number }[] = []
  const claimNames = new Set<string>()
  const walk = (node: Node, macroDepth: number) => {
    let depth = macroDepth
    if (node.op === 'rcall' || node.op === 'call') {
      const args = node.args as unknown[]
      const name = args[0] as string
      if (node.op === 'rcall' && MACROS.has(name)) depth++
      if (depth > MAX_MACRO_NESTING) {
        throw new PolicyCompileError(
          `comprehensions (${[...MACROS].join(', ')}) may nest at most ${MAX_MACRO_NESTING} deep`,
        )
      }
      if (name === 'matches') {
        if (node.op !== 'rcall') throw new PolicyCompileError('use s.matches(pattern)')
        const receiver = args[1] as Node
        const [pattern] = args[2] as Node[]
        if (!pattern) throw new PolicyCompileError('matches() needs a pattern')
        if (pattern.op === 'value' && typeof pattern.args === 'string') {
          try {
            compileRe2(pattern.args)
          } catch (err) {
            throw new PolicyCompileError(
              `regular expression ${JSON.stringify(pattern.args)} is not valid RE2 (no backreferences or lookaround): ${(err as Error).message}`,
            )
          }
        }
        const between = source.slice(receiver.range.end, pattern.range.start)
        if (!/^\s*\.\s*matches\s*\(\s*$/.test(between)) {
          throw new PolicyCompileError('could not rewrite matches() for the RE2 engine')
        }
        edits.push({ start: receiver.range.end, end: pattern.range.start })
      }
    }
    if (node.op === '.' || node.op === '.?') {
      const [target, field] = node.args as [Node, string]
      if (target.op === 'id' && target.args === 'claims') claimNames.add(field)
    }
    if (node.op === '[]' || node.op === '[?]') {
      const [target, index] = node.args as [Node, Node]
      if (target.op === 'id' && target.args === 'claims' && typeof index.args === 'string') {
        claimNames.add(index.args)
      }
    }
    for (const child of children(node)) walk(child, depth)
  }
  walk(parsed.ast, 0)

  let rewritten = source
  for (const e of edits.sort((a, b) => b.start - a.start)) {
    rewritten = `${rewritten.slice(0, e.start)}.re2Matches(${rewritten.slice(e.end)}`
  }
  const program = rewritten === source ? parsed : env.parse(rewritten)
  const checked = program.check()
  if (!checked.valid) throw new PolicyCompileError(celMessage(checked.error, true))
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new PolicyCompileError(
      `policy must return a bool, but it returns ${String(checked.type)}`,
    )
  }
  return { source, claimNames: [...claimNames], program }
}

const compiled = new Map<string, CompiledPolicy>()

/** {@link compilePolicy} with a cache: policies are compiled once, not per exchange. */
export function compilePolicyCached(source: string): CompiledPolicy {
  let p = compiled.get(source)
  if (!p) {
    p = compilePolicy(source)
    if (compiled.size >= 1000) compiled.delete(compiled.keys().next().value!)
    compiled.set(source, p)
  }
  return p
}

/**
 * Evaluates a policy over verified claims. Never throws: a throw, a non-boolean
 * or `false` all deny.
 */
export function evaluatePolicy(
  policy: CompiledPolicy,
  claims: Readonly<Record<string, unknown>>,
): PolicyOutcome {
  const input = policyInput(claims)
  if (!input.ok) return { allow: false, error: input.error }
  try {
    const value: unknown = policy.program({ claims: input.value })
    if (value === true) return { allow: true, value }
    return { allow: false, value }
  } catch (err) {
    return { allow: false, error: celMessage(err) }
  }
}

/**
 * A plain copy of the claims without keys that reach JavaScript internals, capped
 * in size, so `claims.__proto__` or `claims.constructor` find nothing.
 */
export function policyInput(
  claims: Readonly<Record<string, unknown>>,
): { ok: true; value: Record<string, unknown> } | { ok: false; error: string } {
  const json = JSON.stringify(claims)
  if (json.length > MAX_POLICY_INPUT_BYTES) {
    return { ok: false, error: `claims are larger than ${MAX_POLICY_INPUT_BYTES} bytes` }
  }
  // A reviver makes JSON.parse call back into JS for every value, on every exchange;
  // only pay for it when a forbidden key can be present. JSON.stringify never escapes
  // these names, so a key `__proto__` always appears as the literal `"__proto__"`.
  if (!FORBIDDEN_KEY_TEXT.some((k) => json.includes(k))) {
    return { ok: true, value: JSON.parse(json) as Record<string, unknown> }
  }
  return {
    ok: true,
    value: JSON.parse(json, (key, value: unknown) =>
      FORBIDDEN_KEYS.has(key) ? undefined : value,
    ) as Record<string, unknown>,
  }
}

/**
 * A cel-js error message. At save time the admin gets it whole (with the caret
 * under their policy); at run time only the first line, for logs and explain.
 */
function celMessage(err: unknown, full = false): string {
  const message = (err instanceof Error ? err.message : String(err)).trim()
  return full ? message : message.split('\n')[0].trim()
}
