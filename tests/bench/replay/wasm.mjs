// Replays an editing trace through the compiled browser module (client-wasm/pkg/, built by
// `cargo xtask wasm`) exactly as the editor drives it: one `applyQuillDelta` per keystroke,
// each returning the update message for the server. Then checks the final text, and that the
// messages alone, applied by npm Yjs to a fresh document, rebuild it.
//
//   node tests/bench/replay/wasm.mjs [trace]        (trace: a name in ../shared/traces/)

import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { check, load, report } from './trace.mjs'

const pkg = new URL('../../../client-wasm/pkg/', import.meta.url)
const { initSync, QuireDoc } = await import(new URL('quire_client.js', pkg))
initSync({ module: readFileSync(new URL('quire_client_bg.wasm', pkg)) })

const trace = load()
const doc = new QuireDoc()
const messages = new Array(trace.deltas.length)
const times = new Float64Array(trace.deltas.length)
const start = performance.now()
for (let i = 0; i < trace.deltas.length; i++) {
  const delta = trace.deltas[i]
  const t = performance.now()
  messages[i] = doc.applyQuillDelta(delta)
  times[i] = performance.now() - t
}
const total = performance.now() - start
check(trace, 'QuireDoc', doc.contentDelta().map((op) => op.insert).join(''))

// y-websocket framing: messageSync (0), then messageYjsUpdate (2), then the update.
const peer = new Y.Doc()
let bytes = 0
for (const message of messages) {
  if (!(message instanceof Uint8Array)) throw new Error('a keystroke produced no update message')
  bytes += message.length
  const decoder = decoding.createDecoder(message)
  if (decoding.readVarUint(decoder) !== 0 || decoding.readVarUint(decoder) !== 2) throw new Error('not a sync update message')
  Y.applyUpdate(peer, decoding.readVarUint8Array(decoder))
}
check(trace, "QuireDoc's messages applied by npm Yjs", peer.getText('content').toString())
doc.free()
report(trace, 'wasm QuireDoc.applyQuillDelta (Node)', total, times, `, ${bytes} bytes of messages`)
