// The device's copy when the server will not take its changes: for now (it cannot save them,
// 4507; they would pass the document's size limit, 4413), when they are kept and retried; or
// for good (the document was deleted, 4410; the copy belongs to a deleted document of the same
// id, 4412), when they are offered for download as Markdown (the same Markdown as the server's
// export) before the copy is dropped.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'

import { newUser, openEditor, ownerFetch, text, TIMEOUT_MS, uniqueDocId, useQuire, waitFor } from './support.mjs'

const env = useQuire()

const status = (page) => page.locator('.status .label').textContent()
const editable = (page) => page.locator('.ql-editor').getAttribute('contenteditable')

async function waitStatus (page, expected, timeout = TIMEOUT_MS) {
  let seen
  await waitFor(async () => {
    seen = await status(page)
    return expected instanceof RegExp ? expected.test(seen) : seen === expected
  }, timeout, `the status to read ${expected}`, () => JSON.stringify(seen))
}

/** Clicks `selector` and returns the file it downloads: its suggested name and its text. */
async function download (page, selector) {
  const started = page.waitForEvent('download')
  await page.click(selector)
  const file = await started
  return { name: file.suggestedFilename(), body: await readFile(await file.path(), 'utf8') }
}

async function createDoc (body) {
  const response = await ownerFetch(env.server, '/api/docs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  assert.equal(response.status, 201, await response.clone().text())
}

const serverText = async (docId) => (await ownerFetch(env.server, `/api/docs/${docId}/content?format=text`)).text()

for (const [code, reason, said, explained] of [
  [4507, 'the server cannot save changes right now; keep them and retry later', 'The server cannot save changes right now',
    /cannot save changes right now\. Your changes are kept on this device/],
  [4413, 'the document has reached its size limit', 'This document has reached its size limit',
    /reached its size limit, so your latest changes cannot be added to it\. They are kept on this device/]
]) {
  test(`closed with ${code}, the editor says so, keeps the changes and sends them once the server takes them`, async () => {
    const docId = uniqueDocId(`e2e-close-${code}`)
    const context = await newUser(env.browser, 'Alice')
    // The server's close, as the page sees it: the live socket is closed with the code, and so
    // is every new one while `refusing`.
    let refusing = false
    let live
    await context.routeWebSocket(/\/ws\//, (socket) => {
      if (refusing) {
        socket.close({ code, reason })
        return
      }
      live = socket
      socket.connectToServer()
    })
    const page = await openEditor(context, env.server, docId)
    await page.click('.ql-editor')
    await page.keyboard.type('Saved.')
    await waitStatus(page, 'All changes synced')

    refusing = true
    live.close({ code, reason })
    await page.keyboard.type(' Kept here meanwhile.')
    await waitStatus(page, `${said}: changes saved on this device, not yet synced`)
    assert.match(await page.locator('.banner').textContent(), explained)
    assert.equal(await editable(page), 'true', 'typing goes on')
    await page.keyboard.type(' And more.')

    refusing = false
    await waitStatus(page, 'All changes synced', 4 * TIMEOUT_MS)
    assert.equal(await page.locator('.banner').isHidden(), true)
    assert.equal(await serverText(docId), 'Saved. Kept here meanwhile. And more.')
    assert.deepEqual(page.errors, [])
  })
}

test('the Markdown a device writes is the server\'s export of the same document', async () => {
  const docId = uniqueDocId('e2e-markdown')
  const markdown = '# Title *with* `code`\n\nA **bold** and *italic* and ~~gone~~ and <u>under</u>, ' +
    '[a link](https://example.com/a_b) 文字 😀\n\n- one\n- two\n\n1. first\n2. second\n\n> quoted\n\n' +
    '```\nfn main() {}\n```\n\n\\# not a heading, \\*not emphasis\\*\n\nx<strong>bold.</strong>next\n'
  await createDoc({ id: docId, content: markdown })
  const page = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  const exported = await (await ownerFetch(env.server, `/api/docs/${docId}/content?format=markdown`)).text()
  assert.equal(exported, markdown)
  assert.equal(await page.evaluate(() => window.quire.markdown()), exported)
})

/** Opens `docId` as the owner, writes `words` and waits until the server has them; then takes
 * the page offline and types `offline` (unsynced, on the device). */
async function unsyncedEdits (docId, words, offline) {
  const context = await newUser(env.browser, 'Alice')
  const page = await openEditor(context, env.server, docId)
  await page.fill('.title', 'Field notes')
  await page.click('.ql-editor')
  await page.keyboard.type(words)
  await waitStatus(page, 'All changes synced')
  await context.setOffline(true)
  await page.keyboard.type(offline)
  await waitStatus(page, /not yet synced/)
  return { context, page }
}

const deviceRecord = (page, docId) => page.evaluate((id) => window.quire.store.doc(id).then((doc) => doc ?? null), docId)

test('a document deleted while this device had unsynced edits offers them for download, then erases the copy', async () => {
  const docId = uniqueDocId('e2e-deleted-unsynced')
  const { context, page } = await unsyncedEdits(docId, 'Kept online.', ' Typed offline.')
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`, { method: 'DELETE' })).status, 204)
  await context.setOffline(false)
  await waitStatus(page, 'This document was deleted')
  assert.equal(await editable(page), 'false')
  // Nothing is erased before the user has had the changes.
  await page.waitForSelector('[data-action="download-changes"]')
  assert.notEqual(await deviceRecord(page, docId), null)
  const file = await download(page, '[data-action="download-changes"]')
  assert.deepEqual(file, { name: 'Field notes.md', body: 'Kept online. Typed offline.\n' })
  await waitFor(async () => (await deviceRecord(page, docId)) === null, TIMEOUT_MS, 'the device copy to be erased')
  assert.deepEqual(page.errors, [])
})

test('unsynced edits of a deleted document can be discarded instead', async () => {
  const docId = uniqueDocId('e2e-deleted-discard')
  const { context, page } = await unsyncedEdits(docId, 'Kept online.', ' Not wanted.')
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`, { method: 'DELETE' })).status, 204)
  await context.setOffline(false)
  await waitStatus(page, 'This document was deleted')
  assert.notEqual(await deviceRecord(page, docId), null)
  await page.click('[data-action="discard"]')
  await waitFor(async () => (await deviceRecord(page, docId)) === null, TIMEOUT_MS, 'the device copy to be erased')
  await page.reload()
  await waitStatus(page, 'This document was deleted')
  assert.equal(await page.locator('[data-action="download-changes"]').count(), 0, 'nothing left to offer')
})

test('a copy of a document deleted and created again is offered for download, never merged, then the current one opens', async () => {
  const docId = uniqueDocId('e2e-stale')
  const { context, page } = await unsyncedEdits(docId, 'The old document.', ' Old offline words.')
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`, { method: 'DELETE' })).status, 204)
  await createDoc({ id: docId, content: 'The new document.' })
  await context.setOffline(false)
  await waitStatus(page, 'This copy belongs to a deleted document')
  assert.equal(await editable(page), 'false')
  assert.match(await page.locator('.ended').textContent(), /deleted and created again/)
  const file = await download(page, '[data-action="download-changes"]')
  assert.deepEqual(file, { name: 'Field notes.md', body: 'The old document. Old offline words.\n' })
  // Then the current document opens in its place, with nothing of the old copy.
  await page.click('[data-action="open-current"]')
  await page.waitForFunction(() => window.quire?.session.synced, null, { timeout: TIMEOUT_MS })
  let shown
  await waitFor(async () => (shown = await text(page)).startsWith('The new document.\n'), TIMEOUT_MS,
    'the current document', () => JSON.stringify(shown))
  await waitStatus(page, 'All changes synced')
  assert.equal(await serverText(docId), 'The new document.\n')
  assert.deepEqual(page.errors, [])
})

test('a stale copy with nothing unsynced gives way to the current document at once', async () => {
  const docId = uniqueDocId('e2e-stale-synced')
  const context = await newUser(env.browser, 'Alice')
  const page = await openEditor(context, env.server, docId)
  await page.click('.ql-editor')
  await page.keyboard.type('Read before the deletion.')
  await waitStatus(page, 'All changes synced')
  await page.close()
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`, { method: 'DELETE' })).status, 204)
  await createDoc({ id: docId, content: 'Created again.' })
  const again = await openEditor(context, env.server, docId)
  let shown
  await waitFor(async () => (shown = await text(again)).startsWith('Created again.\n'), TIMEOUT_MS,
    'the current document', () => JSON.stringify(shown))
  assert.equal(await serverText(docId), 'Created again.\n')
})
