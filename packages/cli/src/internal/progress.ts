/** What the import has done so far, for the progress line. */
export interface ProgressState {
  filesDone: number
  filesTotal: number
  bytesDone: number
  bytesTotal: number
  eventsSent: number
}

/**
 * A one-line progress bar redrawn in place on a TTY (stderr); nothing on other streams,
 * where the import prints plain per-agent lines instead.
 */
export class Progress {
  readonly #stream: NodeJS.WriteStream
  readonly #enabled: boolean
  #last = 0
  #shown = false

  constructor(stream: NodeJS.WriteStream, enabled: boolean) {
    this.#stream = stream
    this.#enabled = enabled && stream.isTTY
  }

  get enabled(): boolean {
    return this.#enabled
  }

  update(s: ProgressState, force = false): void {
    if (!this.#enabled) return
    const now = Date.now()
    if (!force && now - this.#last < 100) return
    this.#last = now
    const width = 24
    const ratio = s.bytesTotal > 0 ? Math.min(1, s.bytesDone / s.bytesTotal) : 1
    const filled = Math.round(ratio * width)
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`
    const line = `${bar} ${Math.round(ratio * 100)}% ${s.filesDone}/${s.filesTotal} files, ${formatBytes(s.bytesDone)}/${formatBytes(s.bytesTotal)}, ${s.eventsSent} events sent`
    const cols = this.#stream.columns || 100
    this.#stream.write(`\r\x1b[2K${line.slice(0, cols - 1)}`)
    this.#shown = true
  }

  /** Prints a line above the bar (or plainly when there is no bar). */
  log(line: string): void {
    if (this.#shown) this.#stream.write('\r\x1b[2K')
    this.#stream.write(`${line}\n`)
    this.#last = 0
  }

  done(): void {
    if (this.#shown) this.#stream.write('\r\x1b[2K')
    this.#shown = false
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}
