#!/usr/bin/env node
// Commands (import, start, stop, flush, health, mcp) arrive with the CLI issue; the
// adapters are the only part built so far.
console.error('hivemind: no commands yet (adapter layer only)')
process.exitCode = 2
