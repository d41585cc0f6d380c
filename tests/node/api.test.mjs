// The HTTP API (/api) with stock npm clients: its OpenAPI document passes a real validator and
// lists every route; what a stock Yjs client writes exports to the expected Markdown; imports
// reach a connected stock client live; Yjs updates go both ways between npm yjs and the API.
// Run from tests/: `node --test node/` (after `cargo build -p quire --bin quire`).

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'

import { validate, compileErrors } from '@readme/openapi-parser'

import { TIMEOUT_MS, Y, connectClient, startServer, uniqueDocId, waitFor } from './support.mjs'

// The API is quire's own: there is nothing to check against another y-websocket server.
const skip = process.env.QUIRE_TEST_WS_BASE && 'QUIRE_TEST_WS_BASE is set: the HTTP API is quire-only'

/** Every route the API serves, as `METHOD path` in the OpenAPI document's spelling. */
const ROUTES = [
  'GET /api/docs',
  'POST /api/docs',
  'GET /api/docs/{id}',
  'DELETE /api/docs/{id}',
  'GET /api/docs/{id}/content',
  'PUT /api/docs/{id}/content',
  'POST /api/docs/{id}/updates',
  'GET /api/docs/{id}/links',
  'POST /api/docs/{id}/links',
  'DELETE /api/docs/{id}/links/{link}',
  'GET /api/docs/{id}/versions',
  'POST /api/docs/{id}/versions',
  'PATCH /api/docs/{id}/versions/{v}',
  'DELETE /api/docs/{id}/versions/{v}',
  'GET /api/docs/{id}/versions/{v}/content',
  'GET /api/docs/{id}/versions/{v}/diff',
  'POST /api/docs/{id}/versions/{v}/restore',
  'GET /api/session',
  'POST /api/session',
  'DELETE /api/session',
  'GET /api/openapi.json'
]
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server

before(async () => {
  if (!skip) server = await startServer()
})

after(async () => {
  await server?.stop()
})

const show = (value) => JSON.stringify(value)
const api = (path) => `${server.httpUrl}${path}`

function client (t, docId) {
  const c = connectClient(server.wsBase, docId)
  t.after(() => c.destroy())
  return c
}

/** Creates a document through the API; returns its metadata. */
async function create (body) {
  const res = await fetch(api('/api/docs'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  assert.equal(res.status, 201, `create ${show(body)}: ${await res.clone().text()}`)
  return res.json()
}

async function exportAs (docId, query) {
  const res = await fetch(api(`/api/docs/${docId}/content?${query}`))
  assert.equal(res.status, 200, `export ${docId}?${query}: ${await res.clone().text()}`)
  return res
}

test('the OpenAPI document is valid and lists every route', { skip }, async () => {
  const res = await fetch(api('/api/openapi.json'))
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type'), /^application\/json/)
  const document = await res.json()
  assert.match(document.openapi, /^3\.1\./)

  // validate() resolves $refs in place: give it a copy, keep the original for the route list.
  const result = await validate(structuredClone(document))
  assert.ok(result.valid, `the OpenAPI document is invalid:\n${compileErrors(result)}`)

  const listed = Object.entries(document.paths)
    .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
  assert.deepEqual(listed.sort(), [...ROUTES].sort())
  // Every error a route declares is quire's JSON error.
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS.filter((m) => item[m])) {
      for (const [status, response] of Object.entries(item[method].responses)) {
        if (Number(status) < 400) continue
        const schema = response.content?.['application/json']?.schema
        assert.equal(schema?.$ref, '#/components/schemas/ErrorBody', `${method} ${path} ${status}`)
      }
    }
  }
})

test('what a stock Yjs client writes exports as Markdown, HTML and a Yjs update', { skip }, async (t) => {
  const docId = uniqueDocId('api-export')
  const a = client(t, docId)
  await a.synced()
  const { text } = a
  a.doc.transact(() => {
    text.insert(0, 'Heading\n')
    text.format(7, 1, { header: 1 })
  })
  text.insert(text.length, 'Some ', {})
  text.insert(text.length, 'bold', { bold: true })
  text.insert(text.length, ' text\n', {})
  text.insert(text.length, 'one\n', {})
  text.format(text.length - 1, 1, { list: 'bullet' })
  text.insert(text.length, 'two\n', {})
  text.format(text.length - 1, 1, { list: 'bullet' })

  const expected = '# Heading\n\nSome **bold** text\n\n- one\n- two\n'
  let markdown = ''
  await waitFor(async () => {
    const res = await fetch(api(`/api/docs/${docId}/content?format=markdown`))
    markdown = res.status === 200 ? await res.text() : `HTTP ${res.status}`
    return markdown === expected
  }, TIMEOUT_MS, `the Markdown export to be ${show(expected)}`, () => show(markdown))

  const html = await exportAs(docId, 'format=html')
  assert.match(html.headers.get('content-type'), /^text\/html/)
  assert.equal(await html.text(), '<h1>Heading</h1>\n<p>Some <strong>bold</strong> text</p>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n')

  // The Yjs export, v1 and v2, read by npm yjs: the same delta the client holds.
  for (const [encoding, apply] of [['v1', Y.applyUpdate], ['v2', Y.applyUpdateV2]]) {
    const res = await exportAs(docId, `format=yjs&encoding=${encoding}`)
    assert.equal(res.headers.get('content-type'), 'application/octet-stream')
    const replica = new Y.Doc()
    apply(replica, new Uint8Array(await res.arrayBuffer()))
    assert.deepEqual(replica.getText('content').toDelta(), text.toDelta(), `the ${encoding} export`)
  }

  // `since` a stock client's state vector (URL-safe base64): only what it lacks.
  const behind = new Y.Doc()
  Y.applyUpdate(behind, Y.encodeStateAsUpdate(a.doc))
  const since = Buffer.from(Y.encodeStateVector(behind)).toString('base64url')
  text.insert(text.length, 'later', {})
  let missing = new Uint8Array()
  await waitFor(async () => {
    missing = new Uint8Array(await (await exportAs(docId, `format=yjs&since=${since}`)).arrayBuffer())
    return missing.length > 2
  }, TIMEOUT_MS, 'the server to have the later edit')
  Y.applyUpdate(behind, missing)
  assert.equal(behind.getText('content').toString(), text.toString())
})

test('a PUT import reaches a connected stock client without a reconnect', { skip }, async (t) => {
  const docId = uniqueDocId('api-import')
  await create({ id: docId, title: 'Imported', content: 'before' })
  const c = client(t, docId)
  await c.synced()
  await waitFor(() => c.text.toString() === 'before\n', TIMEOUT_MS, 'the created content', () => show(c.text.toString()))
  assert.equal(c.meta.get('title'), 'Imported')
  const socket = c.provider.ws
  let reconnects = 0
  c.provider.on('status', ({ status }) => { if (status === 'connecting') reconnects++ })

  const put = await fetch(api(`/api/docs/${docId}/content`), {
    method: 'PUT',
    headers: { 'content-type': 'text/markdown; charset=utf-8' },
    body: '# After\n\n**now** — 你好'
  })
  assert.equal(put.status, 204, await put.text())
  const expected = [
    { insert: 'After' },
    { insert: '\n', attributes: { header: 1 } },
    { insert: 'now', attributes: { bold: true } },
    { insert: ' — 你好\n' }
  ]
  await waitFor(() => show(c.text.toDelta()) === show(expected), TIMEOUT_MS,
    'the imported content in the connected client', () => show(c.text.toDelta()))

  // And a Yjs update written by npm yjs, merged through the API, reaches it too.
  const writer = new Y.Doc()
  Y.applyUpdate(writer, new Uint8Array(await (await exportAs(docId, 'format=yjs')).arrayBuffer()))
  const before = Y.encodeStateVector(writer)
  writer.getText('content').insert(0, 'Yjs says hi. ')
  const merged = await fetch(api(`/api/docs/${docId}/updates`), {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(writer, before)
  })
  assert.equal(merged.status, 204, await merged.text())
  await waitFor(() => c.text.toString().startsWith('Yjs says hi. After'), TIMEOUT_MS,
    'the merged update in the connected client', () => show(c.text.toString()))

  assert.equal(c.provider.ws, socket, 'the client was given a new socket')
  assert.equal(reconnects, 0, 'the client reconnected')
})

test('the documents list follows a document being edited, while its editor stays connected', { skip }, async (t) => {
  const created = await create({})
  const docId = created.id
  const c = client(t, docId)
  await c.synced()
  // A person types a title, then a word of the body, and keeps the document open.
  for (const prefix of ['Q', 'Q1', 'Q1 ', 'Q1 p', 'Q1 pl', 'Q1 pla', 'Q1 plan']) c.meta.set('title', prefix)
  c.text.insert(0, 'Revenue')
  const listed = async () => {
    const res = await fetch(api('/api/docs?limit=500'))
    const { docs } = await res.json()
    return docs.find((doc) => doc.id === docId)
  }
  let seen
  await waitFor(async () => {
    seen = await listed()
    return seen?.title === 'Q1 plan' && seen.updated_ms > created.updated_ms && seen.size_bytes > created.size_bytes
  }, 3000, 'the list to show the last title, a newer time and the new size within 3 s', () => show(seen))
  assert.ok(c.provider.wsconnected, 'the editor is still connected')
})
