import type * as fsPromises from 'node:fs/promises'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { reportingUnreadable, walk, type UnreadableSink } from './files.js'

// A directory named `locked` fails like one without read permission does for a non-root
// user (the tests may run as root, for whom chmod 000 changes nothing).
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof fsPromises>()
  return {
    ...fs,
    readdir: ((path: string, options: unknown) => {
      if (String(path).endsWith('/locked')) {
        return Promise.reject(
          Object.assign(new Error(`EACCES: permission denied, scandir '${path}'`), {
            code: 'EACCES',
          }),
        )
      }
      return (fs.readdir as (p: string, o: unknown) => Promise<unknown>)(path, options)
    }) as typeof fs.readdir,
  }
})

describe(walk.name, () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hivemind-walk-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const jsonl = (_p: string, name: string) => name.endsWith('.jsonl')
  async function walkReporting(root: string) {
    const reported: [string, string | undefined][] = []
    const sink: UnreadableSink = (path, error) => reported.push([path, error.code])
    const files = await reportingUnreadable(sink, () => walk(root, jsonl))
    return { files, reported }
  }

  it('follows linked files and directories; each real file once; link loops end', async () => {
    await mkdir(join(dir, 'root', 'a'), { recursive: true })
    await mkdir(join(dir, 'elsewhere'))
    await writeFile(join(dir, 'root', 'a', 'one.jsonl'), '{}\n')
    await writeFile(join(dir, 'elsewhere', 'two.jsonl'), '{}\n')
    await writeFile(join(dir, 'three.jsonl'), '{}\n')
    await symlink(join(dir, 'elsewhere'), join(dir, 'root', 'b'))
    await symlink(join(dir, 'three.jsonl'), join(dir, 'root', 'three.jsonl'))
    await symlink(join(dir, 'root', 'a', 'one.jsonl'), join(dir, 'root', 'z-one-again.jsonl'))
    await symlink(join(dir, 'root'), join(dir, 'root', 'a', 'up'))
    await symlink(join(dir, 'nowhere'), join(dir, 'root', 'dangling.jsonl'))
    const { files, reported } = await walkReporting(join(dir, 'root'))
    expect(files).toEqual([
      join(dir, 'root', 'a', 'one.jsonl'),
      join(dir, 'root', 'b', 'two.jsonl'),
      join(dir, 'root', 'three.jsonl'),
    ])
    // A dangling link is a file that is gone: not worth a word.
    expect(reported).toEqual([])
  })

  it('reports a directory it cannot read (EACCES) or a link it cannot follow (ELOOP); lists the rest', async () => {
    await mkdir(join(dir, 'root', 'locked'), { recursive: true })
    await writeFile(join(dir, 'root', 'ok.jsonl'), '{}\n')
    await symlink('self', join(dir, 'root', 'self'))
    const { files, reported } = await walkReporting(join(dir, 'root'))
    expect(files).toEqual([join(dir, 'root', 'ok.jsonl')])
    expect(reported).toEqual([
      [join(dir, 'root', 'locked'), 'EACCES'],
      [join(dir, 'root', 'self'), 'ELOOP'],
    ])
  })

  it('a missing root or a file as root is silent (and the sink is optional)', async () => {
    await writeFile(join(dir, 'file'), '')
    expect(await walkReporting(join(dir, 'missing'))).toEqual({ files: [], reported: [] })
    expect(await walkReporting(join(dir, 'file'))).toEqual({ files: [], reported: [] })
    await mkdir(join(dir, 'locked'))
    expect(await walk(join(dir, 'locked'), jsonl)).toEqual([])
  })
})
