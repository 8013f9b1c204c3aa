import { open, readFile, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { sha256Hex } from './jsonl.js'
import { ParseSink, usageOf, type SessionBuilder } from './normalize.js'
import { walk } from './files.js'
import type { AdapterEnv, AgentAdapter, ParseOptions, ParseResult, SessionFile } from './types.js'

export const ENV_AIDER_CHAT_HISTORY_FILE = 'AIDER_CHAT_HISTORY_FILE'

const RUN_HEADER = /^# aider chat started at (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\s*$/

/**
 * aider: `.aider.chat.history.md` at the git root, or the file `AIDER_CHAT_HISTORY_FILE` names.
 *
 * - Markdown, append-only. Each `# aider chat started at …` run is one session, named
 *   `<file_fp[:16]>-<byte offset of the run header>` (aider has no session ids; `file_fp`
 *   hashes the first two non-empty lines so a moved file keeps its sessions).
 * - Blocks: `#### ` lines → `user_message`, `> ` lines → `system` (a `Tokens:` line →
 *   `usage`, rounded as aider prints it: "2.4k sent"), anything else → `assistant_message`.
 * - Keys `o:<offset>` of the block with `rev` = its length: the block still being written
 *   is re-sent as it grows and replaces the shorter copy.
 * - Run times are local time without a zone: read as this machine's local time.
 * - cwd = the directory holding the file. Left out: `.aider.input.history` (prompts
 *   only) and `.aider.llm.history`; there are no tool calls to extract.
 */
export const aiderAdapter: AgentAdapter = {
  id: 'aider',

  defaultRoots(env: AdapterEnv = process.env) {
    // aider writes into each repository; the current directory is the natural root. A
    // history file named by the env var is a root of its own: its name can be anything.
    const file = env[ENV_AIDER_CHAT_HISTORY_FILE]
    return [file ? resolve(file) : process.cwd()]
  },

  async discover(roots) {
    const files: SessionFile[] = []
    for (const root of roots) {
      // A root that is a history file (`AIDER_CHAT_HISTORY_FILE`, `--path`) is taken
      // whatever its name.
      if (await isHistoryFile(root)) {
        files.push({ agent: 'aider', path: root, root })
        continue
      }
      const paths = await walk(root, (_p, name) => name === '.aider.chat.history.md', {
        skipDirs: new Set(['node_modules', '.git', '.venv', 'venv']),
        maxDepth: 4,
      })
      for (const path of paths) files.push({ agent: 'aider', path, root })
    }
    return files
  },

  parse(file, options) {
    return parseAider(file, options)
  },
}

interface Block {
  kind: 'user_message' | 'assistant_message' | 'system'
  offset: number
  lines: string[]
  bytes: number
}

async function parseAider(file: SessionFile, options: ParseOptions = {}): Promise<ParseResult> {
  const sink = new ParseSink('aider', file.path)
  const from = options.fromOffset ?? 0
  const buf = await readFile(file.path)
  const end = buf.lastIndexOf(0x0a) + 1 // the partial last line waits
  const text = buf.subarray(0, end).toString('utf8')
  const nonEmpty = text.split('\n').filter((l) => l.trim() !== '')
  if (nonEmpty.length < 2) return sink.result(0)
  const fp = sha256Hex(`${nonEmpty[0]}\n${nonEmpty[1]}`).slice(0, 16)

  let offset = 0
  let sid: string | undefined
  let session: SessionBuilder | undefined
  let runTs: string | null = null
  let block: Block | undefined
  let seq = 0
  const flush = () => {
    if (!block || !sid) return
    const b = block
    block = undefined
    if (b.offset + b.bytes <= from) return
    const body = b.lines.map((l) =>
      b.kind === 'user_message'
        ? l.replace(/^####\s?/, '')
        : b.kind === 'system'
          ? l.replace(/^>\s?/, '')
          : l,
    )
    const t = body.join('\n').trim()
    if (t === '' && b.kind !== 'system') return
    const base = {
      sessionId: sid,
      thread: 'main',
      seq: seq++,
      ts: runTs,
      nativeKey: `o:${b.offset}`,
      rev: b.bytes,
      offset: b.offset,
      raw: b.lines.join('\n'),
    }
    const tokens =
      b.kind === 'system'
        ? /Tokens: ([\d.]+[kKmM]?) sent,(?: ([\d.]+[kKmM]?) cache write,)?(?: ([\d.]+[kKmM]?) cache hit,)? ([\d.]+[kKmM]?) received/.exec(
            t,
          )
        : null
    sink.add({
      ...base,
      kind: b.kind,
      text: t,
      role:
        b.kind === 'user_message'
          ? 'user'
          : b.kind === 'assistant_message'
            ? 'assistant'
            : undefined,
    })
    if (tokens) {
      const sent = amount(tokens[1])
      const cacheWrite = amount(tokens[2])
      const cacheHit = amount(tokens[3])
      sink.add({
        ...base,
        seq: seq++,
        nativeKey: `o:${b.offset}#usage`,
        raw: undefined,
        kind: 'usage',
        usage: usageOf({
          input_tokens: sent - cacheHit - cacheWrite,
          output_tokens: amount(tokens[4]),
          cache_read: cacheHit,
          cache_write: cacheWrite,
        }),
      })
    }
  }

  for (const raw of text.split('\n')) {
    const lineBytes = Buffer.byteLength(raw) + 1
    const line = raw.replace(/\s+$/, '')
    const header = RUN_HEADER.exec(line)
    if (header) {
      flush()
      sid = `${fp}-${offset}`
      session = sink.session(sid)
      session.cwd = dirname(file.path)
      const [, y, mo, d, h, mi, s] = header.map(Number)
      runTs = new Date(y, mo - 1, d, h, mi, s).toISOString()
      session.seen(runTs)
    } else if (session) {
      const model = /^> (?:Main model|Model): (\S+)/.exec(line)?.[1]
      if (model) session.model = model
      const version = /^> Aider (v[\d.]+)/.exec(line)?.[1]
      if (version) session.version(version)
      const kind: Block['kind'] | null =
        line === ''
          ? null
          : line.startsWith('####')
            ? 'user_message'
            : line.startsWith('>')
              ? 'system'
              : 'assistant_message'
      if (kind == null) {
        // blank lines end user and status blocks; assistant text keeps its paragraphs
        if (block && block.kind !== 'assistant_message') flush()
        else if (block) {
          block.lines.push('')
          block.bytes += lineBytes
        }
      } else if (block && block.kind === kind) {
        block.lines.push(line)
        block.bytes += lineBytes
      } else {
        flush()
        block = { kind, offset, lines: [line], bytes: lineBytes }
      }
      if (kind === 'user_message' && session.fallbackTitle == null) {
        const t = line.replace(/^####\s?/, '').trim()
        if (t) session.fallbackTitle = t.slice(0, 120)
      }
    }
    offset += lineBytes
  }
  flush()
  return sink.result(end)
}

/**
 * True for a file that begins like a chat history (a run header first), whatever its
 * name: `--path` hands every adapter the same roots, and a Claude `.jsonl` named there
 * must not be read as aider's.
 */
async function isHistoryFile(path: string): Promise<boolean> {
  let fh
  try {
    if (!(await stat(path)).isFile()) return false
    fh = await open(path, 'r')
    const buf = Buffer.alloc(4096)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    const first = buf
      .subarray(0, bytesRead)
      .toString('utf8')
      .split('\n')
      .find((l) => l.trim() !== '')
    return first !== undefined && RUN_HEADER.test(first.trimEnd())
  } catch {
    return false
  } finally {
    await fh?.close()
  }
}

function amount(s: string | undefined): number {
  if (!s) return 0
  const n = parseFloat(s)
  const unit = s.slice(-1).toLowerCase()
  return Math.round(unit === 'k' ? n * 1e3 : unit === 'm' ? n * 1e6 : n)
}
