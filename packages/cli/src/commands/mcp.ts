import type { CAC } from 'cac'
import { ENV } from '@hivemind/sdk/schemas'
import { callDaemon } from '../daemon/control-client.js'
import { DaemonAlreadyRunningError, type Daemon } from '../daemon/daemon.js'
import {
  checkCredentialInBackground,
  DEFAULT_DRAIN_TIMEOUT_S,
  drainTimeoutMs,
  prepareDaemon,
} from '../daemon/launch.js'
import { DaemonStatus } from '../daemon/status.js'
import { EXIT } from '../errors.js'
import type { CliIo } from '../io.js'
import { VERSION } from '../version.js'

interface McpFlags {
  endpoint?: string
  stateDir?: string
  drainTimeout?: string | number
}

export function registerMcp(cli: CAC, io: CliIo): void {
  cli
    .command('mcp', 'Stdio MCP server (GitHub Copilot): runs the daemon in-process, tool `status`')
    .option('--endpoint <url>', `Server URL (default $${ENV.endpoint})`)
    .option('--state-dir <dir>', `State dir (default $${ENV.stateDir} or ~/.hivemind)`)
    .option('--drain-timeout <seconds>', 'Final flush budget when stdin closes or on SIGTERM', {
      default: DEFAULT_DRAIN_TIMEOUT_S,
    })
    .action(async (flags: McpFlags) => {
      io.exitCode = await runMcp(flags, io)
    })
}

/**
 * Pattern C: Copilot's cloud agent spawns `hivemind mcp` for the session and kills it at
 * the end. The daemon runs in this process (its `flush` socket included, for the
 * session-end hook); stdout carries only the MCP protocol, logs go to the state dir.
 * When stdin closes or SIGTERM arrives, it flushes within `--drain-timeout` and exits.
 */
async function runMcp(flags: McpFlags, io: CliIo): Promise<number> {
  const drainMs = drainTimeoutMs(flags.drainTimeout)
  const setup = prepareDaemon(flags, io)
  const { stateDir, paths, logger } = setup

  let daemon: Daemon | undefined
  try {
    daemon = await setup.start()
    checkCredentialInBackground(daemon, setup)
  } catch (err) {
    // Another daemon owns the state dir (a `hivemind start` earlier in the job): serve
    // its status rather than fail the agent's session.
    if (!(err instanceof DaemonAlreadyRunningError)) throw err
    logger.warn({ pid: err.pid }, 'a daemon already runs for this state dir; serving its status')
  }

  // Loaded here, not at the top: every other command (the daemon included) would carry it.
  const [{ McpServer }, { StdioServerTransport }] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/mcp.js'),
    import('@modelcontextprotocol/sdk/server/stdio.js'),
  ])
  const server = new McpServer({ name: 'hivemind', version: VERSION })
  server.registerTool(
    'status',
    {
      title: 'HiveMind upload status',
      description:
        'What the HiveMind daemon uploading this session is doing: files watched, events pending, last upload and error, token source and expiry, paused or not.',
      outputSchema: DaemonStatus.shape,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      const status = daemon ? daemon.status() : await remoteStatus(paths.socket)
      if (!status) {
        return {
          isError: true,
          content: [{ type: 'text', text: `no daemon answers for state dir ${stateDir}` }],
        }
      }
      return {
        content: [{ type: 'text', text: JSON.stringify(status) }],
        structuredContent: status,
      }
    },
  )

  const ended = new Promise<string>((resolve) => {
    process.stdin.once('end', () => resolve('stdin closed'))
    process.stdin.once('close', () => resolve('stdin closed'))
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  const transport = new StdioServerTransport()
  transport.onclose = () => undefined
  await server.connect(transport)
  const why = await ended
  logger.info({ reason: why }, 'MCP session ended; final flush')
  const result = daemon ? await daemon.shutdown(drainMs) : { drained: true }
  await server.close().catch(() => {})
  return result.drained ? EXIT.ok : EXIT.failed
}

async function remoteStatus(socket: string): Promise<DaemonStatus | undefined> {
  const reply = await callDaemon<unknown>(socket, 'GET', '/status', 3000)
  if (!reply.ok) return undefined
  const parsed = DaemonStatus.safeParse(reply.body)
  return parsed.success ? parsed.data : undefined
}
