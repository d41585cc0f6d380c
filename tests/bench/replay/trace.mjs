// What every replay shares: reading an editing trace from `../shared/traces/` next to the
// repository (never copied into it), the Quill delta of each keystroke, the per-keystroke
// statistics, and the check that fails the run when a replay ends with the wrong text.

import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'

const traces = new URL('../../../../shared/traces/', import.meta.url)

/**
 * The trace named on the command line (default automerge-paper), as the Quill deltas its
 * keystrokes produce (`[{retain}, {delete}]` or `[{retain}, {insert}]`, a zero retain left out
 * as Quill does) and the text it must end with.
 */
export function load () {
  const name = process.argv[2] ?? 'automerge-paper'
  const trace = JSON.parse(gunzipSync(readFileSync(new URL(`${name}.json.gz`, traces))))
  if (trace.startContent !== '') throw new Error('only traces starting from an empty document are supported')
  const deltas = []
  for (const { patches } of trace.txns) {
    for (const [pos, deleted, inserted] of patches) {
      // Trace positions count code points, Quill counts UTF-16 units: equal on ASCII, which
      // the sequential traces are.
      if (/[^\x00-\x7f]/.test(inserted)) throw new Error(`${name} is not ASCII: its positions would need converting`)
      const ops = pos > 0 ? [{ retain: pos }] : []
      if (deleted > 0) ops.push({ delete: deleted })
      if (inserted !== '') ops.push({ insert: inserted })
      deltas.push(ops)
    }
  }
  return { name, deltas, end: trace.endContent }
}

/** Throws unless `text` is the trace's final text. */
export function check (trace, what, text) {
  if (text === trace.end) return
  let at = 0
  while (at < text.length && text[at] === trace.end[at]) at++
  throw new Error(`${what}: the final text differs from endContent (length ${text.length} vs ${trace.end.length}, first difference at ${at})`)
}

/** One line, in the same shape as the native replay's (client-wasm/benches/replay.rs). */
export function report (trace, what, totalMs, times, extra = '') {
  times.sort()
  const at = (q) => times[Math.round((times.length - 1) * q)] * 1000
  console.log(`replay ${trace.name}: ${what}: ${times.length} keystrokes in ${(totalMs / 1000).toFixed(2)} s, ` +
    `p50 ${at(0.5).toFixed(1)} µs, p99 ${at(0.99).toFixed(1)} µs, max ${at(1).toFixed(1)} µs; ` +
    `final text ok (${trace.end.length} units)${extra}`)
}
