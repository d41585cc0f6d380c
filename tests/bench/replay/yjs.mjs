// Replays an editing trace through npm Yjs, the reference for the WASM replay (wasm.mjs), two
// ways, each with an `update` listener collecting the update every keystroke produces:
// - as y-quill drives it: each keystroke's Quill delta to `ytext.applyDelta` in a transaction
//   of its own (what QuireDoc.applyQuillDelta does);
// - with `ytext.insert` / `ytext.delete`, which find the position through Yjs's search markers
//   (applyDelta walks from the start, as yrs does).
//
//   node tests/bench/replay/yjs.mjs [trace]         (trace: a name in ../shared/traces/)

import * as Y from 'yjs'
import { check, load, report } from './trace.mjs'

const trace = load()

function replay (what, edit) {
  const doc = new Y.Doc()
  const text = doc.getText('content')
  const updates = []
  doc.on('update', (update) => updates.push(update))
  const times = new Float64Array(trace.deltas.length)
  const start = performance.now()
  for (let i = 0; i < trace.deltas.length; i++) {
    const delta = trace.deltas[i]
    const t = performance.now()
    doc.transact(() => edit(text, delta))
    times[i] = performance.now() - t
  }
  const total = performance.now() - start
  check(trace, what, text.toString())
  if (updates.length !== trace.deltas.length) throw new Error(`${what}: ${updates.length} updates for ${trace.deltas.length} keystrokes`)
  const peer = new Y.Doc()
  for (const update of updates) Y.applyUpdate(peer, update)
  check(trace, `${what}: the updates applied to a fresh document`, peer.getText('content').toString())
  report(trace, `npm yjs ${what} + update events (Node)`, total, times,
    `, ${updates.reduce((n, u) => n + u.length, 0)} bytes of updates`)
}

replay('applyDelta', (text, delta) => text.applyDelta(delta))
replay('insert/delete', (text, delta) => {
  let at = 0
  for (const op of delta) {
    if (op.retain !== undefined) at = op.retain
    else if (op.delete !== undefined) text.delete(at, op.delete)
    else text.insert(at, op.insert)
  }
})
