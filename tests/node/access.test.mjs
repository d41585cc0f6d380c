// Access control with stock npm clients: y-websocket passes a share link's token as a
// parameter (`params: { token }`), a view token's writes are refused with y-protocols' "permission
// denied" (which y-websocket reports), and a JWT minted here with the `jsonwebtoken` package and
// the server's secret opens its document, as an application embedding quire would mint one.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'

import jwt from 'jsonwebtoken'

import { connectClient, startServer, TIMEOUT_MS, uniqueDocId, waitFor } from './support.mjs'

const skip = process.env.QUIRE_TEST_WS_BASE && 'QUIRE_TEST_WS_BASE is set: access control is quire-only'

const OWNER_KEY = 'node-owner-key'
const SECRET = 'a secret that an embedding application shares with quire'

let server
before(async () => {
  if (!skip) server = await startServer({ ownerKey: OWNER_KEY, secret: SECRET })
})
after(async () => {
  await server?.stop()
})

async function owner (path, body) {
  const res = await fetch(`${server.httpUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OWNER_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  assert.equal(res.status, 201, `${path}: ${await res.clone().text()}`)
  return res.json()
}

function client (t, docId, token) {
  const c = connectClient(server.wsBase, docId, { token })
  t.after(() => c.destroy())
  return c
}

test('stock clients with an edit link and a view link: one edits, the other only watches and is told', { skip }, async (t) => {
  const docId = uniqueDocId('links')
  await owner('/api/docs', { id: docId, content: 'Hello' })
  const edit = await owner(`/api/docs/${docId}/links`, { role: 'edit' })
  const view = await owner(`/api/docs/${docId}/links`, { role: 'view' })
  const editor = client(t, docId, edit.token)
  const viewer = client(t, docId, view.token)
  await editor.synced()
  await viewer.synced()
  editor.text.insert(editor.text.length, ' from the editor')
  await waitFor(() => viewer.text.toString().endsWith(' from the editor'), TIMEOUT_MS, 'the viewer to see the edit')

  // y-websocket reports y-protocols' permission-denied message with console.warn.
  const warnings = []
  const warn = console.warn
  console.warn = (...args) => warnings.push(args.join(' '))
  t.after(() => { console.warn = warn })
  viewer.text.insert(0, 'NOT ALLOWED ')
  await waitFor(() => warnings.some((w) => w.includes('Permission denied')), TIMEOUT_MS, 'the permission-denied message')
  console.warn = warn
  assert.ok(warnings.some((w) => w.includes('view only')), warnings.join('\n'))

  // The third client never gets the view-only write.
  const fresh = client(t, docId, edit.token)
  await fresh.synced()
  assert.equal(fresh.text.toString(), 'Hello\n from the editor')
})

test('a JWT minted with a standard library and the server secret opens its document, and only it', { skip }, async (t) => {
  const docId = uniqueDocId('minted')
  await owner('/api/docs', { id: docId, content: 'For our app' })
  const token = jwt.sign({ doc: docId, role: 'edit', name: 'Ada' }, SECRET, { algorithm: 'HS256', expiresIn: '1h' })
  const c = client(t, docId, token)
  await c.synced()
  assert.equal(c.text.toString(), 'For our app\n')
  c.text.insert(0, '→ ')
  const check = client(t, docId, OWNER_KEY)
  await waitFor(() => check.synced() && check.text.toString() === '→ For our app\n', TIMEOUT_MS, 'the edit on the server')

  // The same token opens no other document, and one signed with another secret opens nothing.
  const other = await fetch(`${server.httpUrl}/api/docs/${docId}x/content`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(other.status, 403)
  const forged = jwt.sign({ doc: docId, role: 'edit' }, 'not the secret', { algorithm: 'HS256' })
  const refused = await fetch(`${server.httpUrl}/api/docs/${docId}/content`, { headers: { authorization: `Bearer ${forged}` } })
  assert.equal(refused.status, 401)
  const exported = await fetch(`${server.httpUrl}/api/docs/${docId}/content?format=text`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal(await exported.text(), '→ For our app\n')
})
