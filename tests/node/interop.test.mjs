// Interoperability: stock npm clients (yjs 13 + y-websocket 3, unchanged) against the quire binary.
// quire speaks the y-websocket protocol, so everything here must work exactly as with the
// reference server. Run from tests/: `node --test node/` (after `cargo build -p quire --bin quire`).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  TIMEOUT_MS, connectClient, dropAbruptly, makeTempDir, removeTempDir, sleep, startServer, tryUpgrade,
  uniqueDocId, waitFor
} from './support.mjs'

// Only set when checking these tests against another y-websocket server (see support.mjs).
// Some tests check quire's own contract (id validation, persistence) that the reference server
// does not have, and are skipped then.
const external = Boolean(process.env.QUIRE_TEST_WS_BASE)
const quireOnly = external && 'QUIRE_TEST_WS_BASE is set: this checks a quire-only contract'

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server

before(async () => {
  server = await startServer()
})

after(async () => {
  await server?.stop()
})

/** Connects a stock client for this test only: it is destroyed when the test ends, pass or fail. */
function client (t, docId, opts) {
  const c = connectClient(server.wsBase, docId, opts)
  t.after(() => c.destroy())
  return c
}

const show = (value) => JSON.stringify(value)

/**
 * Types `input` one code point at a time (a surrogate pair is never split), at the UTF-16 index
 * that `indexFor(typedSoFar)` returns, with short random pauses so that two typists' updates
 * interleave at the server.
 */
async function type (c, input, indexFor) {
  let typed = 0
  for (const ch of input) {
    c.text.insert(indexFor(typed), ch)
    typed += ch.length
    await sleep(Math.floor(Math.random() * 5))
  }
}

test('two stock clients typing concurrently converge (CJK and emoji)', async (t) => {
  const docId = uniqueDocId('converge')
  const a = client(t, docId)
  const b = client(t, docId)
  await Promise.all([a.synced(), b.synced()])

  // A line break splits the document into A's region (before) and B's (after): concurrent
  // keystrokes at one position may interleave by design of the CRDT, which is not under test.
  a.text.insert(0, '\n')
  await waitFor(() => b.text.toString() === '\n', TIMEOUT_MS,
    "B to receive A's first line break", () => show(b.text.toString()))

  const aInput = '你好，世界 👋🏽'
  const bInput = 'Hello, wörld 🎉 — ok'
  await Promise.all([
    type(a, aInput, (typed) => typed), // A's text is all there is before the line break
    type(b, bInput, () => b.text.length) // B always types at the end
  ])

  const expected = `${aInput}\n${bInput}`
  await waitFor(() => a.text.toString() === expected && b.text.toString() === expected, TIMEOUT_MS,
    `both clients to hold ${show(expected)}`,
    () => `A ${show(a.text.toString())}, B ${show(b.text.toString())}`)
  assert.deepEqual(a.text.toDelta(), b.text.toDelta(), 'A and B deltas differ after convergence')
  assert.deepEqual(a.text.toDelta(), [{ insert: expected }])
  for (const [who, c] of [['A', a], ['B', b]]) {
    const s = c.text.toString()
    assert.ok(s.includes(aInput) && s.includes(bInput), `${who} is missing an input: ${show(s)}`)
  }
})

test('awareness states flow between clients and reach a late joiner', async (t) => {
  const docId = uniqueDocId('awareness')
  const a = client(t, docId)
  const b = client(t, docId)
  await Promise.all([a.synced(), b.synced()])

  const ann = { name: 'Ann', color: '#f00' }
  const bob = { name: 'Bob', color: '#00f' }
  a.awareness.setLocalStateField('user', ann)
  b.awareness.setLocalStateField('user', bob)
  const userOf = (observer, subject) => observer.awareness.getStates().get(subject.doc.clientID)?.user
  const states = (c) => show([...c.awareness.getStates()])

  await waitFor(() => userOf(b, a)?.name === 'Ann', TIMEOUT_MS, "B to see A's user 'Ann'", () => states(b))
  assert.deepEqual(userOf(b, a), ann)
  await waitFor(() => userOf(a, b)?.name === 'Bob', TIMEOUT_MS, "A to see B's user 'Bob'", () => states(a))
  assert.deepEqual(userOf(a, b), bob)

  // The late joiner neither changed anything nor was there when Ann and Bob were set:
  // the server has to hand it the current states.
  const c = client(t, docId)
  await c.synced()
  await waitFor(() => userOf(c, a)?.name === 'Ann' && userOf(c, b)?.name === 'Bob', TIMEOUT_MS,
    "late joiner C to see both 'Ann' and 'Bob'", () => states(c))
})

test('awareness state is removed when its client leaves, abruptly or via destroy()', async (t) => {
  const docId = uniqueDocId('presence')
  const a = client(t, docId)
  const b = client(t, docId)
  const c = client(t, docId)
  await Promise.all([a.synced(), b.synced(), c.synced()])
  a.awareness.setLocalStateField('user', { name: 'Ann', color: '#f00' })
  c.awareness.setLocalStateField('user', { name: 'Cy', color: '#0f0' })
  const has = (observer, subject) => observer.awareness.getStates().has(subject.doc.clientID)
  const states = (observer) => show([...observer.awareness.getStates()])
  await waitFor(() => has(b, a) && has(b, c), TIMEOUT_MS, "B to see both A's and C's states", () => states(b))

  // No close frame and no "leaving" awareness message: only the server knows A left. The
  // clients' own expiry is 30 s (y-protocols' outdatedTimeout), well above this timeout.
  const droppedAt = Date.now()
  dropAbruptly(a)
  await waitFor(() => !has(b, a) && !has(c, a), TIMEOUT_MS,
    "B and C to drop A's awareness state after A's socket was cut (the server must announce it)",
    () => `B ${states(b)}, C ${states(c)}`)
  t.diagnostic(`A's state vanished ${Date.now() - droppedAt} ms after its socket was cut`)

  // The polite way: destroy() sends a null state for C before closing.
  c.destroy()
  await waitFor(() => !has(b, c), TIMEOUT_MS, "B to drop C's awareness state after C's provider was destroyed",
    () => states(b))
})

/**
 * Writes Quill-style rich text: inline attributes on runs, line attributes on the '\n' that ends
 * the line. Returns the delta it expects `content` to hold afterwards.
 */
function writeRichText (c) {
  const { text, meta } = c
  c.doc.transact(() => {
    text.insert(0, 'Quire notes\n')
    text.format(11, 1, { header: 1 })
  })
  // `{}`, not no attributes: Y.Text.insert without attributes inherits the preceding character's.
  text.insert(text.length, 'plain, ', {})
  text.insert(text.length, 'bold', { bold: true })
  text.insert(text.length, ' and ', {})
  text.insert(text.length, 'italic 你好', { italic: true })
  text.insert(text.length, ' 👋🏽\n', {})
  text.insert(text.length, 'first item\n', {})
  text.format(text.length - 1, 1, { list: 'bullet' })
  // Formatting applied after the fact, in a later update, over existing text.
  text.format(12, 5, { bold: true, italic: true })
  meta.set('title', 'Quire notes — 笔记')
  return [
    { insert: 'Quire notes' },
    { insert: '\n', attributes: { header: 1 } },
    { insert: 'plain', attributes: { bold: true, italic: true } },
    { insert: ', ' },
    { insert: 'bold', attributes: { bold: true } },
    { insert: ' and ' },
    { insert: 'italic 你好', attributes: { italic: true } },
    { insert: ' 👋🏽\nfirst item' },
    { insert: '\n', attributes: { list: 'bullet' } }
  ]
}

test('a late joiner gets the full content with formatting and the title', async (t) => {
  const docId = uniqueDocId('late')
  const a = client(t, docId)
  const b = client(t, docId)
  await Promise.all([a.synced(), b.synced()])

  const expected = writeRichText(a)
  assert.deepEqual(a.text.toDelta(), expected, 'the writer itself does not hold the intended delta')
  // Once B has everything, so does the server: B can only have got it through the server.
  await waitFor(() => show(b.text.toDelta()) === show(expected) && b.meta.get('title') === a.meta.get('title'),
    TIMEOUT_MS, 'B to receive the formatted content and the title', () => show(b.text.toDelta()))

  const c = client(t, docId)
  await c.synced('late joiner C to sync')
  // The server's sync step 2 (what makes the provider "synced") must already hold everything.
  const atSynced = c.text.toDelta()
  const titleAtSynced = c.meta.get('title')
  let eventually = ''
  if (show(atSynced) !== show(expected)) {
    eventually = await waitFor(() => show(c.text.toDelta()) === show(expected), TIMEOUT_MS, '')
      .then(() => ' (it arrived later, after the provider had reported synced)', () => ' (and never arrived)')
  }
  assert.deepEqual(atSynced, expected, `late joiner's content when it reported synced${eventually}`)
  assert.equal(titleAtSynced, 'Quire notes — 笔记', "late joiner's meta.title when it reported synced")
})

test('content and formatting survive unloading and a server restart', { skip: quireOnly }, async (t) => {
  // A server of its own, so that its documents unload the moment they are idle and it can be
  // restarted on the same store. Its data dir outlives the first server and is removed at the end.
  const dataDir = await makeTempDir()
  let own
  t.after(async () => {
    await own?.stop()
    await removeTempDir(dataDir)
  })
  own = await startServer({ dataDir, args: ['--idle-unload-secs', '0'] })

  const docId = uniqueDocId('rejoin')
  const a = connectClient(own.wsBase, docId)
  const b = connectClient(own.wsBase, docId)
  t.after(() => { a.destroy(); b.destroy() })
  await Promise.all([a.synced(), b.synced()])
  const expected = writeRichText(a)
  await waitFor(() => show(b.text.toDelta()) === show(expected), TIMEOUT_MS,
    'B to receive the formatted content', () => show(b.text.toDelta()))
  a.destroy()
  b.destroy()

  const rejoin = async (server, when) => {
    const c = connectClient(server.wsBase, docId)
    try {
      await c.synced(`a rejoiner ${when} to sync`)
      await waitFor(() => show(c.text.toDelta()) === show(expected), TIMEOUT_MS,
        `a rejoiner ${when} to get the full formatted content`, () => show(c.text.toDelta()))
      assert.equal(c.meta.get('title'), 'Quire notes — 笔记', `title for a rejoiner ${when}`)
    } finally {
      c.destroy()
    }
  }
  // Each rejoin follows the previous one's leave after a different pause, so that some of them
  // land while the document is being persisted and unloaded: the pauses sample that window.
  await rejoin(own, 'right after everyone left')
  for (const pauseMs of [0, 5, 20, 100, 300]) {
    await sleep(pauseMs)
    await rejoin(own, `${pauseMs} ms after the previous rejoiner left`)
  }

  await own.stop() // SIGTERM: the server persists before it exits
  own = await startServer({ dataDir })
  await rejoin(own, 'after a server restart (SIGTERM) on the same store')
})

test('edits made while disconnected merge on reconnect', async (t) => {
  const docId = uniqueDocId('offline')
  const a = client(t, docId)
  const b = client(t, docId)
  const watcher = client(t, docId)
  await Promise.all([a.synced(), b.synced(), watcher.synced()])
  a.text.insert(0, 'shared line\n')
  await waitFor(() => b.text.toString() === 'shared line\n' && watcher.text.toString() === 'shared line\n',
    TIMEOUT_MS, "B and the watcher to receive A's first line", () => show(b.text.toString()))

  a.provider.disconnect()
  const offline = '离线 edit by A 🛫 '
  const online = 'online edit by B ✈️'
  a.text.insert(0, offline)
  b.text.insert(b.text.length, online)
  await waitFor(() => watcher.text.toString().includes(online), TIMEOUT_MS,
    "the watcher to receive B's edit", () => show(watcher.text.toString()))
  // The edits really were concurrent: neither side has the other's yet.
  assert.ok(!a.text.toString().includes(online), "A received B's edit while disconnected")
  assert.ok(!watcher.text.toString().includes(offline), "A's offline edit reached the watcher before A reconnected")

  a.provider.connect()
  const expected = `${offline}shared line\n${online}`
  const all = [a, b, watcher]
  await waitFor(() => all.every((c) => c.text.toString() === expected), TIMEOUT_MS,
    `A, B and the watcher to hold ${show(expected)} after A reconnected`,
    () => all.map((c) => show(c.text.toString())).join(', '))
  assert.deepEqual(a.text.toDelta(), b.text.toDelta(), 'A and B deltas differ after the merge')
  assert.deepEqual(b.text.toDelta(), watcher.text.toDelta(), 'B and watcher deltas differ after the merge')
})

test('a bad document id is refused with HTTP 400 before the upgrade', { skip: quireOnly }, async () => {
  const refused = [
    ['a space (bad%20id)', 'bad%20id'],
    ['200 characters', 'a'.repeat(200)],
    ['129 characters (one over the limit)', 'b'.repeat(129)],
    ['a non-ASCII letter (%C3%A9)', 'caf%C3%A9']
  ]
  for (const [what, id] of refused) {
    const { status } = await tryUpgrade(`${server.wsBase}/${id}`)
    assert.equal(status, 400, `an id with ${what} should get HTTP 400, got ${status}`)
  }
  // The control: the same route accepts the longest valid id and the whole alphabet.
  const accepted = [
    ['128 characters (the limit)', 'c'.repeat(128)],
    ['every allowed character class', `Az09._-${Date.now()}`]
  ]
  for (const [what, id] of accepted) {
    const { status } = await tryUpgrade(`${server.wsBase}/${id}`)
    assert.equal(status, 101, `an id with ${what} should be accepted (101), got ${status}`)
  }
})
