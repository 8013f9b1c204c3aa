import { z } from 'zod'
import { Scope } from './names.js'

/** Error body of every API route outside `/oauth/token`. */
export const ApiErrorBody = z.object({
  error: z.string(),
  code: z.string().optional(),
  details: z.unknown().optional(),
})
export type ApiErrorBody = z.infer<typeof ApiErrorBody>

export const HealthCheckStatus = z.enum(['ok', 'down', 'disabled'])

/** `GET /api/v1/health` (readiness). 503 when degraded, same body. */
export const HealthResponse = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  audience: z.string(),
  checks: z.record(z.string(), HealthCheckStatus),
})
export type HealthResponse = z.infer<typeof HealthResponse>

/** `GET /api/v1/me`: who the credential acts as. */
export const MeResponse = z.object({
  kind: z.enum(['user', 'service_account']),
  id: z.string(),
  name: z.string(),
  role: z.string().optional(),
  scopes: z.array(Scope),
  credential: z.string().optional(),
  expires_at: z.string().nullable().optional(),
})
export type MeResponse = z.infer<typeof MeResponse>
