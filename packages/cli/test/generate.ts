// Generates realistic Claude Code and Codex session files (shapes of the fixtures in
// test/fixtures/, bigger and many), for the kill-mid-import test and the import benchmark.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

export interface GenerateOptions {
  /** `CLAUDE_CONFIG_DIR` to write `projects/<enc(cwd)>/<id>.jsonl` under. */
  claudeDir: string
  /** `CODEX_HOME` to write `sessions/YYYY/MM/DD/rollout-….jsonl` under. */
  codexDir: string
  /** Sessions per agent. */
  sessions: number
  /** Turns per session (each turn is 4–5 lines). */
  turns: number
  cwd: string
  /** Characters of tool output per turn (the bulk of real files). @default 1500 */
  toolOutputChars?: number
  /** Varies ids between calls. @default 'g' */
  seed?: string
}

const WORDS =
  'the build fails because the migration runs before the schema exists so we add a guard and rerun tests with coverage then check lint output for warnings in src lib index'.split(
    ' ',
  )

function prose(n: number, salt: number): string {
  let out = ''
  for (let i = 0; out.length < n; i++) out += `${WORDS[(i * 7 + salt) % WORDS.length]} `
  return out.slice(0, n)
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0')

/** Writes the files; returns their paths and total size in bytes. */
export async function generateSessions(
  o: GenerateOptions,
): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = []
  let bytes = 0
  const out = o.toolOutputChars ?? 1500
  const seed = o.seed ?? 'g'
  const seedHex = hex(
    [...seed].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7),
    8,
  )
  const enc = o.cwd.replace(/[^a-zA-Z0-9]/g, '-')
  const claudeProject = join(o.claudeDir, 'projects', enc)
  const codexDay = join(o.codexDir, 'sessions', '2026', '01', '02')
  await mkdir(claudeProject, { recursive: true })
  await mkdir(codexDay, { recursive: true })
  const base = Date.parse('2026-01-02T10:00:00.000Z')
  const ts = (s: number, t: number, k: number) =>
    new Date(base + s * 3_600_000 + t * 10_000 + k * 1000).toISOString()

  for (let s = 0; s < o.sessions; s++) {
    // Claude Code
    const sid = `${seedHex}-${hex(s, 4)}-4333-8444-${hex(s, 12)}`
    const lines: string[] = []
    let parent: string | null = null
    for (let t = 0; t < o.turns; t++) {
      const u = (k: number) => `${sid.slice(0, 8)}-u-${t}-${k}`
      const env = {
        isSidechain: false,
        userType: 'external',
        cwd: o.cwd,
        sessionId: sid,
        version: '2.1.90',
        gitBranch: 'main',
      }
      const usage = {
        input_tokens: 10 + t,
        cache_creation_input_tokens: 100,
        cache_read_input_tokens: 1000 * t,
        output_tokens: 50,
      }
      const model = 'claude-sonnet-4-6'
      lines.push(
        JSON.stringify({
          parentUuid: parent,
          ...env,
          type: 'user',
          message: { role: 'user', content: prose(120, s + t) },
          uuid: u(1),
          timestamp: ts(s, t, 0),
          entrypoint: 'cli',
        }),
        JSON.stringify({
          parentUuid: u(1),
          ...env,
          message: {
            model,
            id: `msg_${s}_${t}`,
            type: 'message',
            role: 'assistant',
            content: [{ type: 'text', text: prose(300, t) }],
            usage,
          },
          requestId: `req_${s}_${t}`,
          type: 'assistant',
          uuid: u(2),
          timestamp: ts(s, t, 1),
        }),
        JSON.stringify({
          parentUuid: u(2),
          ...env,
          message: {
            model,
            id: `msg_${s}_${t}`,
            type: 'message',
            role: 'assistant',
            content: [
              {
                type: 'tool_use',
                id: `toolu_${s}_${t}`,
                name: 'Bash',
                input: { command: 'npm test -- --coverage', description: 'Run the tests' },
              },
            ],
            usage,
          },
          requestId: `req_${s}_${t}`,
          type: 'assistant',
          uuid: u(3),
          timestamp: ts(s, t, 2),
        }),
        JSON.stringify({
          parentUuid: u(3),
          ...env,
          type: 'user',
          message: {
            role: 'user',
            content: [
              {
                type: 'tool_result',
                tool_use_id: `toolu_${s}_${t}`,
                content: prose(out, s * t),
                is_error: false,
              },
            ],
          },
          uuid: u(4),
          timestamp: ts(s, t, 3),
          toolUseResult: { stdout: prose(out / 2, t), stderr: '', interrupted: false },
        }),
      )
      parent = u(4)
    }
    const claudeFile = join(claudeProject, `${sid}.jsonl`)
    const claudeText = `${lines.join('\n')}\n`
    await writeFile(claudeFile, claudeText)
    files.push(claudeFile)
    bytes += Buffer.byteLength(claudeText)

    // Codex
    const cid = `019b${seedHex.slice(0, 4)}-${hex(s, 4)}-7000-8000-${hex(s, 12)}`
    const c: string[] = [
      JSON.stringify({
        timestamp: ts(s, 0, 0),
        type: 'session_meta',
        payload: {
          id: cid,
          timestamp: ts(s, 0, 0),
          cwd: o.cwd,
          originator: 'codex_cli_rs',
          cli_version: '0.120.0',
          source: 'exec',
          git: { branch: 'main' },
        },
      }),
    ]
    let total = 0
    for (let t = 0; t < o.turns; t++) {
      total += 1000 + t
      const last = {
        input_tokens: 1000 + t,
        cached_input_tokens: 200,
        output_tokens: 50,
        reasoning_output_tokens: 10,
        total_tokens: 1050 + t,
      }
      c.push(
        JSON.stringify({
          timestamp: ts(s, t, 1),
          type: 'turn_context',
          payload: { turn_id: `t${t}`, cwd: o.cwd, model: 'gpt-5-codex' },
        }),
        JSON.stringify({
          timestamp: ts(s, t, 1),
          type: 'response_item',
          payload: {
            type: 'message',
            role: 'user',
            content: [{ type: 'input_text', text: prose(120, t + s) }],
          },
        }),
        JSON.stringify({
          timestamp: ts(s, t, 2),
          type: 'response_item',
          payload: {
            type: 'function_call',
            name: 'shell',
            arguments: JSON.stringify({ command: ['bash', '-lc', 'npm test'] }),
            call_id: `call_${t}`,
          },
        }),
        JSON.stringify({
          timestamp: ts(s, t, 3),
          type: 'response_item',
          payload: {
            type: 'function_call_output',
            call_id: `call_${t}`,
            output: prose(out, t * 3),
          },
        }),
        JSON.stringify({
          timestamp: ts(s, t, 4),
          type: 'event_msg',
          payload: {
            type: 'token_count',
            info: { total_token_usage: { ...last, input_tokens: total }, last_token_usage: last },
          },
        }),
        JSON.stringify({
          timestamp: ts(s, t, 5),
          type: 'response_item',
          payload: {
            type: 'message',
            role: 'assistant',
            content: [{ type: 'output_text', text: prose(300, t) }],
          },
        }),
      )
    }
    const codexFile = join(
      codexDay,
      `rollout-2026-01-02T${String(s % 24).padStart(2, '0')}-00-00-${cid}.jsonl`,
    )
    const codexText = `${c.join('\n')}\n`
    await writeFile(codexFile, codexText)
    files.push(codexFile)
    bytes += Buffer.byteLength(codexText)
  }
  return { files, bytes }
}
