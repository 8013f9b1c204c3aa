// `main` in-process: how flags reach the commands (mri under cac turns repeated flags into
// arrays and digit-only values into numbers) and how `import` reports what it could not
// read. Dry runs and failures before any upload: no server needed.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { main } from './cli.js'
import type { CliIo } from './io.js'

/** One complete Claude Code record: a session file with nothing to complain about. */
const CLAUDE_LINE = `${JSON.stringify({
  type: 'user',
  sessionId: '11111111-2222-4333-8444-555555555555',
  cwd: '/tmp/proj',
  uuid: 'u-1',
  timestamp: '2026-01-02T10:00:00.000Z',
  message: { role: 'user', content: 'hello' },
})}\n`
// Looks like a service-account token; nothing ever accepts it.
const TOKEN = `hmsa_${'A'.repeat(43)}`

interface Run {
  code: number
  stdout: string
  stderr: string
}

describe('main', () => {
  let dir: string
  let sessions: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hivemind-cli-main-'))
    sessions = join(dir, 'sessions')
    await mkdir(sessions)
    await writeFile(join(sessions, 'a.jsonl'), CLAUDE_LINE)
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
    let stdout = ''
    let stderr = ''
    const stream = (append: (s: string) => void) =>
      ({
        isTTY: false,
        write: (s: string) => {
          append(s)
          return true
        },
      }) as unknown as NodeJS.WriteStream
    const io: CliIo = {
      // No endpoint: a run that is not a dry run stops with exit 2 ("no server").
      env: { HOME: join(dir, 'home'), HIVEMIND_STATE_DIR: join(dir, 'state'), ...env },
      cwd: dir,
      stdout: stream((s) => (stdout += s)),
      stderr: stream((s) => (stderr += s)),
      now: Date.now,
      exitCode: 0,
    }
    const code = await main(['node', 'hivemind', ...args], io)
    return { code, stdout, stderr }
  }
  const dryImport = (...extra: string[]) =>
    run(['import', '--all', '--agents', 'claude', '--path', sessions, ...extra])

  describe('switches', () => {
    it.each([
      [['--dry-run=true', '--json']],
      [['--dry-run', '--dry-run', '--json']],
      [['--dry-run', '--json', '--json']],
      [['--dry-run=true', '--json=true']],
    ])('%j is on', async (flags) => {
      const r = await dryImport(...flags)
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, dryRun: true, found: { files: 1 } })
    })

    it('--all twice is still --all (outside a git repository)', async () => {
      const r = await run(['import', '--all', '--all', '--dry-run', '--path', sessions])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    })

    it('--allow-empty twice allows an empty run', async () => {
      const empty = join(dir, 'empty')
      await mkdir(empty)
      const r = await run(['import', '--all', '--path', empty, '--allow-empty', '--allow-empty'])
      expect(r).toMatchObject({ code: 0, stderr: '' })
      expect(r.stdout).toMatch(/no session files found/)
    })

    it('--dry-run=false is off: the run needs a server', async () => {
      const r = await dryImport('--dry-run=false')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^hivemind: no server/)
    })

    it.each([
      ['--dry-run=maybe', /--dry-run takes no value \(got "maybe"\)/],
      ['--dry-run=1', /--dry-run takes no value \(got "1"\)/],
      ['--json=yes', /--json takes no value \(got "yes"\)/],
    ])('%s is a usage error naming the flag', async (flag, message) => {
      const r = await dryImport('--dry-run', flag)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stdout).toBe('')
    })

    it('--dry-run and --dry-run=false together is a usage error', async () => {
      const r = await dryImport('--dry-run', '--dry-run=false')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/--dry-run is both on and off/)
    })

    it('applies to the other commands too: `status --json --json` prints JSON', async () => {
      const r = await run(['status', '--json', '--json', '--state-dir', join(dir, 'none')])
      expect(r.code).toBe(1)
      expect(JSON.parse(r.stdout)).toEqual({ running: false, status: null })
    })
  })

  describe('values stay strings', () => {
    it('--path 2026 is the directory 2026', async () => {
      await mkdir(join(dir, '2026'))
      await writeFile(join(dir, '2026', 'b.jsonl'), CLAUDE_LINE)
      const r = await run(['import', '--all', '--agents', 'claude', '--path', '2026', '--dry-run'])
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(/found 1 session file/)
    })

    it('--path=0x10 is the directory 0x10, not 16', async () => {
      await mkdir(join(dir, '0x10'))
      await writeFile(join(dir, '0x10', 'b.jsonl'), CLAUDE_LINE)
      const r = await run(['import', '--all', '--agents', 'claude', '--path=0x10', '--dry-run'])
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(/found 1 session file/)
    })

    it('--path is repeatable', async () => {
      await mkdir(join(dir, '7'))
      await writeFile(join(dir, '7', 'b.jsonl'), CLAUDE_LINE)
      const r = await dryImport('--path', '7', '--dry-run', '--json')
      expect(JSON.parse(r.stdout)).toMatchObject({ found: { files: 2 } })
    })

    it('--state-dir 123 is the directory 123', async () => {
      const r = await dryImport('--state-dir', '123')
      expect(r.code).toBe(2)
      // Not a crash: the (real) run got as far as wanting a server.
      expect(r.stderr).toMatch(/^hivemind: no server/)
    })

    it("--since '' names the empty value", async () => {
      const r = await dryImport('--dry-run', '--since', '')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/invalid --since ""/)
    })

    it.each([
      [['--since', '1d', '--since', '2d'], /--since given more than once/],
      [['--state-dir', 'a', '--state-dir', 'b'], /--state-dir given more than once/],
    ])('%j: a value flag given twice is a usage error', async (flags, message) => {
      const r = await dryImport('--dry-run', ...flags)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(message)
    })

    it('an unused numeric argument is named as typed', async () => {
      const r = await dryImport('--dry-run', '--all', '0x10')
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/Unused args: `0x10`/)
    })
  })

  describe('import: what it cannot read', () => {
    it('follows symlinked session files and directories, once each, through loops', async () => {
      const elsewhere = join(dir, 'elsewhere')
      await mkdir(join(elsewhere, 'deep'), { recursive: true })
      await writeFile(join(elsewhere, 'deep', 'c.jsonl'), CLAUDE_LINE)
      await writeFile(join(elsewhere, 'd.jsonl'), CLAUDE_LINE)
      await symlink(join(elsewhere, 'deep'), join(sessions, 'linked-dir'))
      await symlink(join(elsewhere, 'd.jsonl'), join(sessions, 'linked.jsonl'))
      await symlink(join(sessions, 'a.jsonl'), join(sessions, 'same-as-a.jsonl'))
      await symlink(sessions, join(sessions, 'loop'))
      const r = await dryImport('--dry-run', '--json')
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      // a.jsonl, linked-dir/c.jsonl, linked.jsonl; same-as-a.jsonl and loop/ are a.jsonl again.
      expect(JSON.parse(r.stdout)).toMatchObject({ found: { files: 3 } })
    })

    it('an unreadable directory is named and fails the run (exit 1); the rest is counted', async () => {
      await symlink('self', join(sessions, 'self'))
      const r = await dryImport('--dry-run', '--json')
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`${join(sessions, 'self')}: could not be read: ELOOP`)
      expect(r.stderr).toMatch(/import incomplete: 1 directory could not be read/)
      expect(r.stderr).toMatch(/Dry run: nothing was uploaded\./)
      expect(r.stderr).not.toMatch(/Everything else was uploaded/)
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: false,
        found: { files: 1 },
        failed: { dirs: 1 },
      })
    })

    it('--path to an unreadable directory is exit 1 naming it, not "no session files found"', async () => {
      const loop = join(dir, 'loop')
      await symlink('loop', loop)
      await mkdir(join(dir, 'home', '.claude'), { recursive: true })
      const r = await run(['import', '--all', '--dry-run'], { CLAUDE_CONFIG_DIR: loop })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`${loop}: could not be read`)
      expect(r.stderr).not.toMatch(/no session files found/)
    })

    it('every file unreadable is exit 1, not 3 ("no session files found")', async () => {
      const bad = join(dir, 'codex')
      await mkdir(bad)
      await writeFile(
        join(bad, 'rollout-2026-01-03T10-00-00-019b0000-0000-7000-8000-00000000dead.jsonl.zst'),
        Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x01, 0x02, 0x03]),
      )
      const r = await run(['import', '--all', '--agents', 'codex', '--path', bad, '--dry-run'])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/1 session file\(s\) could not be read/)
      expect(r.stderr).toMatch(/Dry run: nothing was uploaded\./)
    })

    it('nothing found names the files skipped as not written yet', async () => {
      const empty = join(dir, 'incomplete')
      await mkdir(empty)
      await writeFile(join(empty, 'e.jsonl'), '')
      await writeFile(join(empty, 'f.jsonl'), '{"type":"user"')
      const r = await run(['import', '--all', '--agents', 'claude', '--path', empty, '--dry-run'])
      expect(r.code).toBe(3)
      expect(r.stderr).toMatch(/no session files found .*; 2 skipped as not written yet/)
    })
  })

  describe('import: the state dir', () => {
    it('a regular file as --state-dir: exit 1 naming it and how to fix it', async () => {
      const file = join(dir, 'file')
      await writeFile(file, '')
      const r = await dryImport('--state-dir', file)
      expect(r.code).toBe(1)
      expect(r.stderr).toBe(
        `hivemind: cannot use the state dir ${file}: not a directory\n  Point --state-dir or HIVEMIND_STATE_DIR at a writable directory.\n`,
      )
    })

    it('the daemon too: start --foreground with a file as --state-dir is one line, exit 1', async () => {
      const file = join(dir, 'file')
      await writeFile(file, '')
      const r = await run(['start', '--foreground', '--state-dir', file], {
        HIVEMIND_ENDPOINT: 'http://127.0.0.1:9',
        HIVEMIND_TOKEN: TOKEN,
      })
      expect(r).toEqual({
        code: 1,
        stdout: '',
        stderr: `hivemind: cannot use the state dir ${file}: not a directory\n  Point --state-dir or HIVEMIND_STATE_DIR at a writable directory.\n`,
      })
    })

    it.each([false, true])('a damaged checkpoints.sqlite (dry run %s): exit 1', async (dry) => {
      await mkdir(join(dir, 'state'))
      await writeFile(join(dir, 'state', 'checkpoints.sqlite'), 'not a database at all')
      const r = await dryImport(...(dry ? ['--dry-run'] : []))
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(
        /^hivemind: cannot use the checkpoint store .*checkpoints\.sqlite: file is not a database\n {2}Point --state-dir or HIVEMIND_STATE_DIR/,
      )
    })

    it('an empty checkpoints.sqlite holds no checkpoints (dry run)', async () => {
      await mkdir(join(dir, 'state'))
      await writeFile(join(dir, 'state', 'checkpoints.sqlite'), '')
      const r = await dryImport('--dry-run', '--json')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ found: { files: 1 } })
    })
  })

  describe('import: the server unreachable', () => {
    it('says so, naming the URL, not "no credential"; --json still prints the summary', async () => {
      const env = { HIVEMIND_TOKEN: TOKEN }
      const flag = await run(
        ['import', '--all', '--path', sessions, '--json', '--endpoint', 'http://127.0.0.1:9'],
        env,
      )
      const fromEnv = await run(['import', '--all', '--path', sessions, '--json'], {
        ...env,
        HIVEMIND_ENDPOINT: 'http://127.0.0.1:9',
      })
      for (const x of [flag, fromEnv]) {
        expect(x.code).toBe(1)
        expect(x.stderr).toMatch(/^hivemind: server unreachable at http:\/\/127\.0\.0\.1:9 /)
        expect(x.stderr).toMatch(/HIVEMIND_ENDPOINT/)
        expect(x.stderr).not.toMatch(/no credential/)
        expect(JSON.parse(x.stdout)).toMatchObject({
          ok: false,
          error: expect.stringMatching(/^server unreachable at http:\/\/127\.0\.0\.1:9/),
        })
      }
    }, 30_000)
  })
})
