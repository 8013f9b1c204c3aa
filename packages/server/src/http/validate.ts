import type { z } from 'zod'
import { ApiError } from '../errors.js'

/**
 * Parses input with a zod schema; failures become 400 `invalid_request` whose
 * message names the first bad field (`max_ttl_seconds: must be at least 600 seconds`)
 * and whose `details` lists every issue.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what = 'body',
): z.output<S> {
  const r = schema.safeParse(input)
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => ({
    path: i.path.map(String).join('.') || what,
    message: issueMessage(i),
  }))
  const first = issues[0]
  throw new ApiError(400, 'invalid_request', `${first.path}: ${first.message}`, { details: issues })
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`
  if (issue.code === 'invalid_type' && issue.input === undefined) return 'is required'
  return issue.message
}
