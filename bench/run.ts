// Runs every bench/*.bench.ts in turn. Each exports a default async function that
// measures against a baseline from the same run and prints its own results.
import { readdir } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { join } from 'node:path'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv[2]
const files = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts') && (only === undefined || f.includes(only)))
  .sort()

for (const file of files) {
  console.log(`\n# ${file}`)
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as {
    default: () => Promise<void>
  }
  await mod.default()
}
