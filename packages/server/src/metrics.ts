import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Prometheus metrics of one server instance (own registry: tests run several). */
export interface Metrics {
  registry: Registry
  /** `hivemind_token_exchanges_total{result="success|failure",hivemind_error="…"}` */
  exchanges: Counter<'result' | 'hivemind_error'>
  /** `hivemind_token_exchange_duration_seconds` */
  exchangeDuration: Histogram<'result'>
  /** `hivemind_http_requests_total{method,route,status}` */
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route'>
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry()
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry })
  return {
    registry,
    exchanges: new Counter({
      name: 'hivemind_token_exchanges_total',
      help: 'Token exchanges by result and failed check',
      labelNames: ['result', 'hivemind_error'],
      registers: [registry],
    }),
    exchangeDuration: new Histogram({
      name: 'hivemind_token_exchange_duration_seconds',
      help: 'Token exchange latency',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'hivemind_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'hivemind_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  }
}
