// Pins the nested `uses: hivemind/action/step@…` of the root action.yml to the tag of the
// version in packages/action/package.json (`v<version>`). The composite cannot say `./step`
// (that resolves against the caller's workspace, actions/runner#1348), so each release tag
// must name itself; see docs/action.md.
//
//   tsx scripts/pin-action-ref.ts                       rewrite action.yml
//   tsx scripts/pin-action-ref.ts --check               exit 1 when it is out of date (CI)
//   tsx scripts/pin-action-ref.ts --changeset-version   `changeset version`, rewrite, then
//                                                       rebuild step/dist (it embeds the
//                                                       packages' versions): the release
//                                                       workflow's version command, so the
//                                                       version PR carries pin and bundle
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ACTION_YML = join(ROOT, 'action.yml')
const PACKAGE_JSON = join(ROOT, 'packages/action/package.json')
const NESTED = /^(\s*(?:-\s+)?uses:\s*)(['"]?)hivemind\/action\/step@([^\s'"#]+)\2/gm

/** The tag the nested step must be pinned to: `v` + packages/action's version. */
export function expectedRef(packageJson: string): string {
  const { version } = JSON.parse(packageJson) as { version?: unknown }
  if (typeof version !== 'string' || version === '') {
    throw new Error('packages/action/package.json has no "version"')
  }
  return `v${version}`
}

/** The ref of the one nested `uses: hivemind/action/step@…` line. */
export function pinnedRef(actionYml: string): string {
  const refs = [...actionYml.matchAll(NESTED)].map((m) => m[3])
  if (refs.length !== 1) {
    throw new Error(
      `action.yml must have exactly one \`uses: hivemind/action/step@<ref>\`, found ${refs.length}`,
    )
  }
  return refs[0]
}

/** action.yml with the nested ref replaced by `ref`, everything else byte for byte. */
export function pin(actionYml: string, ref: string): string {
  pinnedRef(actionYml)
  return actionYml.replace(NESTED, (_m, prefix: string, quote: string) => {
    return `${prefix}${quote}hivemind/action/step@${ref}${quote}`
  })
}

function run(command: string, args: string[]): void {
  execFileSync(command, args, { cwd: ROOT, stdio: 'inherit' })
}

function main(args: string[]): number {
  const unknown = args.filter((a) => a !== '--check' && a !== '--changeset-version')
  if (unknown.length > 0) {
    console.error(`pin-action-ref: unknown argument ${unknown.join(' ')}`)
    return 2
  }
  const versionPr = args.includes('--changeset-version')
  if (versionPr) run(join(ROOT, 'node_modules/.bin/changeset'), ['version'])
  const text = readFileSync(ACTION_YML, 'utf8')
  const want = expectedRef(readFileSync(PACKAGE_JSON, 'utf8'))
  const have = pinnedRef(text)
  if (have === want) {
    console.log(`action.yml: hivemind/action/step@${want} (up to date)`)
  } else if (args.includes('--check')) {
    console.error(
      `action.yml uses hivemind/action/step@${have}, but packages/action/package.json is ` +
        `${want.slice(1)}: run \`npx -y pnpm@10 exec tsx scripts/pin-action-ref.ts\` and commit ` +
        `action.yml (the release tag ${want} must point at a commit whose action.yml names ${want}).`,
    )
    return 1
  } else {
    writeFileSync(ACTION_YML, pin(text, want))
    console.log(`action.yml: hivemind/action/step@${have} -> @${want}`)
  }
  if (versionPr) run('npx', ['-y', 'pnpm@10', '--filter', '@hivemind/action...', 'run', 'build'])
  return 0
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2))
}
