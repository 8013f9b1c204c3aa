/** Collects `WHERE` clauses with numbered parameters. */
export class Where {
  readonly params: unknown[] = []
  readonly clauses: string[] = []
  /** `sql` uses `?` for each value, in order. */
  add(sql: string, ...values: unknown[]): this {
    let i = 0
    this.clauses.push(
      sql.replace(/\?/g, () => {
        this.params.push(values[i++])
        return `$${this.params.length}`
      }),
    )
    return this
  }
  param(value: unknown): string {
    this.params.push(value)
    return `$${this.params.length}`
  }
  get sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : ''
  }
}
