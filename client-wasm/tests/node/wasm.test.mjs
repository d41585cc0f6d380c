// The compiled browser module (client-wasm/pkg/, built by `cargo xtask wasm`) run in Node:
// two QuireDocs converge through each other's messages, and a QuireDoc interoperates with the
// real npm Yjs, y-protocols and lib0 (resolved from tests/node_modules; this folder has no
// package.json of its own). Run from the workspace root: `node --test client-wasm/tests/node/`.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const pkg = new URL('../../pkg/', import.meta.url)
const { initSync, QuireDoc } = await import(new URL('quire_client.js', pkg))
initSync({ module: readFileSync(new URL('quire_client_bg.wasm', pkg)) })

// The CommonJS builds throughout, so y-protocols and this file share one Yjs instance.
const require = createRequire(new URL('../../../tests/package.json', import.meta.url))
const Y = require('yjs')
const syncProtocol = require('y-protocols/sync')
const awarenessProtocol = require('y-protocols/awareness')
const encoding = require('lib0/encoding')
const decoding = require('lib0/decoding')

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MESSAGE_QUERY_AWARENESS = 3

/** A QuireDoc as a peer: frames in, frames out; `quill` mirrors what its editor would show. */
function quirePeer () {
  const doc = new QuireDoc()
  const peer = {
    doc,
    quill: [],
    start: () => doc.start(),
    receive (frame) {
      const changes = doc.receive(frame)
      if (changes.contentChange) applyOps(peer.quill, changes.contentChange)
      assert.deepEqual(peer.quill, units(doc.contentDelta()), 'the editor diverged from the document')
      return changes.replies
    },
    edit (ops) {
      applyOps(peer.quill, ops)
      const message = doc.applyQuillDelta({ ops })
      assert.ok(message instanceof Uint8Array)
      return message
    }
  }
  return peer
}

/**
 * A stock Yjs client as a peer, speaking the y-websocket messages the way the y-websocket
 * provider does (y-protocols sync and awareness over lib0 encoding). `outbox` collects the
 * frames its own changes produce.
 */
function yjsPeer (t) {
  const doc = new Y.Doc()
  const awareness = new awarenessProtocol.Awareness(doc)
  // Its renewal timer would keep Node running after the tests.
  t.after(() => { awareness.destroy(); doc.destroy() })
  awareness.setLocalState(null)
  const outbox = []
  const frame = (write) => {
    const encoder = encoding.createEncoder()
    write(encoder)
    return encoding.toUint8Array(encoder)
  }
  doc.on('update', (update, origin) => {
    if (origin !== 'remote') {
      outbox.push(frame((e) => { encoding.writeVarUint(e, MESSAGE_SYNC); syncProtocol.writeUpdate(e, update) }))
    }
  })
  awareness.on('update', ({ added, updated, removed }, origin) => {
    if (origin !== 'remote') {
      const update = awarenessProtocol.encodeAwarenessUpdate(awareness, [...added, ...updated, ...removed])
      outbox.push(frame((e) => { encoding.writeVarUint(e, MESSAGE_AWARENESS); encoding.writeVarUint8Array(e, update) }))
    }
  })
  return {
    doc,
    awareness,
    outbox,
    text: doc.getText('content'),
    start: () => [frame((e) => { encoding.writeVarUint(e, MESSAGE_SYNC); syncProtocol.writeSyncStep1(e, doc) })],
    receive (message) {
      const decoder = decoding.createDecoder(message)
      const encoder = encoding.createEncoder()
      const type = decoding.readVarUint(decoder)
      if (type === MESSAGE_SYNC) {
        encoding.writeVarUint(encoder, MESSAGE_SYNC)
        syncProtocol.readSyncMessage(decoder, encoder, doc, 'remote')
        return encoding.length(encoder) > 1 ? [encoding.toUint8Array(encoder)] : []
      }
      if (type === MESSAGE_AWARENESS) {
        awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), 'remote')
        return []
      }
      assert.equal(type, MESSAGE_QUERY_AWARENESS)
      return []
    },
    /** The frames its own changes produced since the last call. */
    take: () => outbox.splice(0)
  }
}

/** Exchanges messages between two peers until both are quiet. */
function connect (a, b) {
  let toB = a.start()
  let toA = b.start()
  while (toA.length || toB.length) {
    const forB = toB.splice(0)
    for (const m of forB) toA.push(...b.receive(m))
    const forA = toA.splice(0)
    for (const m of forA) toB.push(...a.receive(m))
  }
}

/** A Quill document as a list of units (UTF-16 code units or embeds) with their formats. */
function units (ops) {
  const doc = []
  applyOps(doc, ops)
  return doc
}

/** Applies Quill ops to a list of units the way Quill applies a Delta to its document. */
function applyOps (doc, ops) {
  let at = 0
  for (const op of ops) {
    const attrs = op.attributes ?? {}
    if (op.retain !== undefined) {
      for (const unit of doc.slice(at, at + op.retain)) {
        for (const [k, v] of Object.entries(attrs)) {
          if (v === null) delete unit.attrs[k]
          else unit.attrs[k] = v
        }
      }
      at += op.retain
    } else if (op.delete !== undefined) {
      doc.splice(at, op.delete)
    } else {
      const set = Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== null))
      const parts = typeof op.insert === 'string' ? [...utf16Units(op.insert)] : [op.insert]
      for (const unit of parts) doc.splice(at++, 0, { unit, attrs: { ...set } })
    }
  }
}

const text = (doc) => doc.contentDelta().map((op) => typeof op.insert === 'string' ? op.insert : '\uFFFC').join('')

function * utf16Units (s) {
  for (let i = 0; i < s.length; i++) yield s.charCodeAt(i)
}

test('two QuireDocs converge through each other\'s messages', () => {
  const a = quirePeer()
  const b = quirePeer()
  a.edit([{ insert: '文档 😀 one' }, { insert: '\n', attributes: { header: 1 } }])
  a.edit([{ retain: 3 }, { retain: 2, attributes: { bold: true } }])
  b.edit([{ insert: '👋🏽 两 two\n' }])
  b.doc.setTitle('计划')
  connect(a, b)
  assert.deepEqual(a.doc.contentDelta(), b.doc.contentDelta())
  assert.equal(a.doc.title(), '计划')
  assert.ok(a.doc.contentDelta().some((op) => op.insert === '😀' && op.attributes?.bold === true))

  // Live: every edit is one small message, and the other side's editor follows. Which of the
  // two concurrent first lines comes first depends on the random client ids, so positions are
  // looked up (JavaScript string indexes are UTF-16 units, like Quill's).
  const at = (peer, s) => text(peer.doc).indexOf(s)
  b.receive(a.edit([{ retain: at(a, '档') }, { insert: '件', attributes: { italic: true } }]))
  a.receive(b.edit([{ retain: at(b, 'two') }, { retain: 2, attributes: { underline: true } }, { delete: 1 }]))
  assert.deepEqual(a.doc.contentDelta(), b.doc.contentDelta())
  assert.match(text(a.doc), /文件档 😀 one\n/)
  assert.match(text(a.doc), /👋🏽 两 tw\n/)
  const keystroke = a.edit([{ retain: at(a, 'one') }, { insert: 'x' }])
  // A few dozen bytes: the ids in it are random 53-bit client ids, up to 8 bytes each.
  assert.ok(keystroke.length < 64, `a keystroke is ${keystroke.length} bytes`)
  b.receive(keystroke)
  assert.deepEqual(a.doc.contentDelta(), b.doc.contentDelta())
  assert.ok(a.doc.clientId !== b.doc.clientId && Number.isSafeInteger(a.doc.clientId))
  a.doc.free()
  b.doc.free()
})

test('a QuireDoc and a stock Yjs doc read each other\'s updates', (t) => {
  const q = quirePeer()
  const y = yjsPeer(t)
  q.edit([{ insert: '早上好 🌅\n' }, { insert: 'bold', attributes: { bold: true } }, { insert: '\n', attributes: { list: 'bullet' } }])
  y.text.applyDelta([{ insert: 'from yjs 👍' }, { insert: '\n', attributes: { header: 2 } }])
  y.take()
  connect(q, y)
  assert.deepEqual(q.doc.contentDelta(), y.text.toDelta())

  // A mirror Yjs doc shows what delta Yjs itself reports for the same remote update.
  const mirror = new Y.Doc()
  Y.applyUpdate(mirror, Y.encodeStateAsUpdate(y.doc))
  let yjsDelta = null
  mirror.getText('content').observe((event) => { yjsDelta = event.delta })

  // Yjs -> QuireDoc, live, edited the way y-quill applies Quill's deltas.
  y.text.applyDelta([{ retain: 2 }, { insert: '😀', attributes: { italic: true } }, { delete: 1 }, { retain: 3, attributes: { bold: true } }])
  for (const frame of y.take()) {
    const changes = q.doc.receive(frame)
    applyOps(q.quill, changes.contentChange)
    const decoder = decoding.createDecoder(frame)
    assert.equal(decoding.readVarUint(decoder), MESSAGE_SYNC)
    assert.equal(decoding.readVarUint(decoder), syncProtocol.messageYjsUpdate)
    const update = decoding.readVarUint8Array(decoder)
    Y.applyUpdate(mirror, update, 'remote')
    assert.deepEqual(changes.contentChange, yjsDelta, 'the change delta is the one Yjs reports')
  }
  assert.deepEqual(q.doc.contentDelta(), y.text.toDelta())
  assert.deepEqual(q.quill, units(y.text.toDelta()))

  // QuireDoc -> Yjs, live.
  for (const frame of [q.edit([{ retain: 1 }, { retain: 4, attributes: { underline: true } }, { insert: '✓' }])]) {
    assert.deepEqual(y.receive(frame), [])
  }
  assert.deepEqual(y.text.toDelta(), q.doc.contentDelta())

  // Whole states both ways (the local-store path).
  const fromQuire = new Y.Doc()
  Y.applyUpdate(fromQuire, q.doc.encodeState())
  assert.deepEqual(fromQuire.getText('content').toDelta(), y.text.toDelta())
  const fresh = new QuireDoc()
  const loaded = fresh.applyState(Y.encodeStateAsUpdate(y.doc))
  assert.deepEqual(fresh.contentDelta(), y.text.toDelta())
  assert.deepEqual(units(loaded.contentChange), units(y.text.toDelta()))

  // Titles live in the `meta` map under `title`.
  y.doc.getMap('meta').set('title', 'Yjs title')
  const changes = q.doc.receive(y.take()[0])
  assert.ok(changes.titleChanged)
  assert.equal(q.doc.title(), 'Yjs title')
  y.receive(q.doc.setTitle('quire title'))
  assert.equal(y.doc.getMap('meta').get('title'), 'quire title')
})

test('relative positions are Yjs\'s, in both directions', (t) => {
  const q = quirePeer()
  const y = yjsPeer(t)
  const empty = q.doc.relativePositionFromIndex(0)
  assert.deepEqual(empty, { tname: 'content', assoc: 0 })
  assert.deepEqual(empty, Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(y.text, 0)))
  q.edit([{ insert: 'a😀b 文字' }, { insert: '\n', attributes: { header: 1 } }])
  y.text.applyDelta([{ insert: 'yy' }])
  y.take()
  connect(q, y)
  const length = y.text.length
  for (let index = 0; index <= length; index++) {
    for (const assoc of [0, -1]) {
      const yjs = Y.createRelativePositionFromTypeIndex(y.text, index, assoc)
      const ours = q.doc.relativePositionFromIndex(index, assoc)
      const yjsJson = JSON.parse(JSON.stringify(Y.relativePositionToJSON(yjs)))
      assert.deepEqual(ours, yjsJson, `index ${index}, assoc ${assoc}`)
      assert.equal(q.doc.indexFromRelativePosition(Y.relativePositionToJSON(yjs)), index)
      // y-quill puts the RelativePosition object itself into the presence state: its JSON
      // has null fields.
      assert.equal(q.doc.indexFromRelativePosition(JSON.parse(JSON.stringify(yjs))), index)
      const back = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(ours), y.doc)
      assert.equal(back.index, index)
    }
  }
  assert.equal(q.doc.indexFromRelativePosition({ item: { client: 12345, clock: 9 }, assoc: 0 }), undefined)
})

test('presence interoperates with y-protocols awareness', (t) => {
  const q = quirePeer()
  const y = yjsPeer(t)
  q.edit([{ insert: 'hello 世界\n' }])
  connect(q, y)
  const state = {
    user: { name: 'Ann', color: '#30bced' },
    cursor: { anchor: q.doc.relativePositionFromIndex(6), head: q.doc.relativePositionFromIndex(8) }
  }
  y.receive(q.doc.setLocalState(state))
  assert.deepEqual(y.awareness.getStates().get(q.doc.clientId), state)
  assert.deepEqual(q.doc.localState(), state)
  const yCursor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(state.cursor.head), y.doc)
  assert.equal(yCursor.index, 8)

  // The y-quill way: RelativePosition objects straight into the state.
  y.awareness.setLocalState({
    user: { name: 'Bob', color: '#ee6352' },
    cursor: { anchor: Y.createRelativePositionFromTypeIndex(y.text, 2), head: Y.createRelativePositionFromTypeIndex(y.text, 7) }
  })
  const [frame] = y.take()
  const changes = q.doc.receive(frame)
  assert.ok(changes.awarenessChanged)
  const bob = q.doc.awarenessStates()[y.doc.clientID]
  assert.equal(bob.user.name, 'Bob')
  assert.equal(q.doc.indexFromRelativePosition(bob.cursor.anchor), 2)
  assert.equal(q.doc.indexFromRelativePosition(bob.cursor.head), 7)
  assert.deepEqual(Object.keys(q.doc.awarenessStates()).sort(), [String(q.doc.clientId), String(y.doc.clientID)].sort())

  y.awareness.setLocalState(null)
  assert.ok(q.doc.receive(y.take()[0]).awarenessChanged)
  assert.equal(q.doc.awarenessStates()[y.doc.clientID], undefined)
  y.receive(q.doc.setLocalState(null))
  assert.equal(y.awareness.getStates().has(q.doc.clientId), false)
})

test('garbage throws an Error and the module keeps working', () => {
  const q = quirePeer()
  q.edit([{ insert: 'still here' }])
  const before = q.doc.encodeState()
  for (const bytes of [[], [0xff], [0, 1, 0xff, 0xff, 0xff], [0, 2, 5, 1, 2, 3], [9, 1, 0], [1, 0x80]]) {
    assert.throws(() => q.doc.receive(new Uint8Array(bytes)), Error, `${bytes}`)
    assert.throws(() => q.doc.applyState(new Uint8Array([0xff, ...bytes])), Error)
  }
  assert.throws(() => q.doc.applyQuillDelta('not a delta'), /bad Quill delta/)
  assert.throws(() => q.doc.applyQuillDelta([{ retain: -1 }]), Error)
  assert.throws(() => q.doc.indexFromRelativePosition({ bogus: 1 }), Error)
  assert.throws(() => q.doc.indexFromRelativePosition({ item: { client: 2 ** 60, clock: 0 } }), Error)
  assert.throws(() => q.doc.setLocalState(() => 1), Error)
  assert.deepEqual(q.doc.encodeState(), before)
  // Mutated real messages: errors or accepted, never a trap that kills the module.
  const frames = [...q.start(), q.edit([{ retain: 2 }, { insert: '😀', attributes: { bold: true } }]), q.doc.setTitle('t')]
  let seed = 12345
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648)
  for (let i = 0; i < 500; i++) {
    const frame = Uint8Array.from(frames[next() % frames.length])
    frame[next() % frame.length] = next() & 0xff
    const fresh = new QuireDoc()
    try { fresh.receive(frame) } catch (e) { assert.ok(e instanceof Error) }
    fresh.free()
  }
  q.edit([{ retain: 12 }, { insert: '!' }])
  assert.equal(q.doc.contentDelta().map((op) => op.insert).join(''), 'st😀ill here!')
})

test('a QuireDoc takes a new client id when a stock Yjs doc writes under its id', () => {
  const a = quirePeer()
  const b = quirePeer()
  b.receive(a.edit([{ insert: 'hello ' }]))
  const ann = { user: { name: 'Ann', color: '#30bced' }, cursor: null }
  b.receive(a.doc.setLocalState(ann))
  const old = a.doc.clientId

  // The id is on show in the presence list; taking it is one assignment (after loading the
  // state: a Yjs doc that receives its own id from elsewhere would take a new one itself).
  const squatter = new Y.Doc()
  Y.applyUpdate(squatter, a.doc.encodeState())
  squatter.clientID = old
  const append = (s) => {
    let update
    squatter.once('update', (u) => { update = u })
    squatter.getText('content').insert(squatter.getText('content').length, s)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.writeUpdate(encoder, update)
    return encoding.toUint8Array(encoder)
  }
  const evil = append('evil ')
  b.receive(evil)
  const moved = a.receive(evil)
  // Its next write reaches the server (b) before a's next keystroke.
  const more = append('more ')
  b.receive(more)
  b.receive(a.edit([{ insert: '¡' }]))
  a.receive(more)

  assert.equal(text(a.doc), text(b.doc))
  assert.equal(text(a.doc), '¡hello evil more ')
  assert.notEqual(a.doc.clientId, old)
  assert.ok(Number.isSafeInteger(a.doc.clientId))
  for (const m of moved) b.receive(m)
  assert.deepEqual(b.doc.awarenessStates(), { [a.doc.clientId]: ann }, 'one Ann, under the new id')
  a.doc.free()
  b.doc.free()
  squatter.destroy()
})
