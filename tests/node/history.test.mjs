// Version history with stock npm clients (yjs + y-websocket, presence as y-quill announces it):
// their edits are attributed to the names their presence carried, a restore reaches a connected
// stock client as one transaction, and a stock client that was offline merges its own edit
// into the restored text. (The same and more with native clients: tests/rust/history.rs.)

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'

import { TIMEOUT_MS, connectClient, startServer, uniqueDocId, waitFor } from './support.mjs'

const skip = process.env.QUIRE_TEST_WS_BASE && 'QUIRE_TEST_WS_BASE is set: version history is quire-only'

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server

before(async () => {
  if (!skip) server = await startServer({ args: ['--version-settle-secs', '1'] })
})
after(async () => {
  await server?.stop()
})

const api = (path) => `${server.httpUrl}${path}`

async function post (path, body) {
  const res = await fetch(api(path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`)
  return res.json()
}

function client (t, docId, user) {
  const c = connectClient(server.wsBase, docId)
  if (user) c.awareness.setLocalStateField('user', user)
  t.after(() => c.destroy())
  return c
}

const waitText = (c, expected, who) =>
  waitFor(() => c.text.toString() === expected, TIMEOUT_MS, `${who} to read ${JSON.stringify(expected)}`, () => JSON.stringify(c.text.toString()))

test('stock clients: edits named by presence, a restore in one transaction, an offline edit merged into it', { skip }, async (t) => {
  const docId = uniqueDocId('node-history')
  const ada = client(t, docId, { name: 'Ada', color: '#d93025' })
  const bob = client(t, docId, { name: 'Bob', color: '#1a73e8' })
  await Promise.all([ada.synced(), bob.synced()])

  ada.text.insert(0, 'The plan: ship in May.')
  await waitText(bob, 'The plan: ship in May.', 'Bob')
  const draft = await post(`/api/docs/${docId}/versions`, { name: 'Draft' })
  assert.deepEqual(draft.editors, [{ kind: 'person', name: 'Ada', color: '#d93025' }])

  // Carol holds a copy and goes offline.
  const carol = client(t, docId)
  await carol.synced()
  carol.provider.disconnect()

  // Bob changes the month; the comparison names him for both halves of the change.
  bob.text.delete(bob.text.toString().indexOf('May'), 3)
  bob.text.insert(bob.text.toString().indexOf('.'), 'June')
  await waitText(ada, 'The plan: ship in June.', 'Ada')
  const later = await post(`/api/docs/${docId}/versions`, { name: 'Later' })
  const diff = await (await fetch(api(`/api/docs/${docId}/versions/${later.id}/diff`))).json()
  const changed = diff.spans.filter((s) => s.change !== 'kept').map((s) => [s.change, s.insert, s.author.name])
  assert.deepEqual(changed, [['deleted', 'May', 'Bob'], ['inserted', 'June', 'Bob']])

  // Carol, offline, adds a line.
  carol.text.insert(carol.text.length, ' Budget: 10k.')

  // Ada's stock client counts the transactions it receives.
  let received = 0
  ada.doc.on('update', (_update, origin) => {
    if (origin !== null) received++
  })
  const restored = await post(`/api/docs/${docId}/versions/${draft.id}/restore`, {})
  assert.equal(restored.changed, true)
  await waitText(ada, 'The plan: ship in May.', 'Ada')
  await waitText(bob, 'The plan: ship in May.', 'Bob')
  assert.equal(received, 1, 'the restore arrived in one transaction')

  // Carol comes back: her offline edit lands in the restored text.
  carol.provider.connect()
  await waitText(carol, 'The plan: ship in May. Budget: 10k.', 'Carol')
  await waitText(ada, 'The plan: ship in May. Budget: 10k.', 'Ada')
})
