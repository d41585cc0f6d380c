// The editor's File menu: Import a file (everyone editing sees it live) and Export downloads,
// both through the HTTP API. And the documents list: "New document", newest first.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'

import {
  contents, newUser, openEditor, ownerFetch, text, TIMEOUT_MS, uniqueDocId, useQuire, waitConverged, waitFor
} from './support.mjs'

const env = useQuire()

const MARKDOWN = '# 会议纪要\n\nWe agreed on **three** things:\n\n- ship *on time*\n- write `docs`\n'

async function importFile (page, name, body) {
  await page.click('.menu summary')
  const chooser = page.waitForEvent('filechooser')
  await page.click('[data-action="import"]')
  await (await chooser).setFiles({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(body) })
}

test('File → Import replaces the content for everyone; File → Export downloads each format', async () => {
  const docId = uniqueDocId('e2e-menu')
  const alice = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob'), env.server, docId)
  await alice.click('.ql-editor')
  await alice.keyboard.type('old text')
  await alice.fill('.title', 'Minutes')

  alice.on('dialog', (dialog) => dialog.accept())
  await importFile(alice, 'notes.md', MARKDOWN)
  // Bob did nothing: the import reaches his open editor as a live edit.
  await waitFor(async () => (await text(bob)).startsWith('会议纪要'), TIMEOUT_MS, 'Bob to see the import')
  const ops = await waitConverged([alice, bob])
  assert.deepEqual(ops, [
    { insert: '会议纪要' },
    { insert: '\n', attributes: { header: 1 } },
    { insert: 'We agreed on ' },
    { insert: 'three', attributes: { bold: true } },
    { insert: ' things:\nship ' },
    { insert: 'on time', attributes: { italic: true } },
    { insert: '\n', attributes: { list: 'bullet' } },
    { insert: 'write ' },
    { insert: 'docs', attributes: { code: true } },
    { insert: '\n', attributes: { list: 'bullet' } },
    // The import ends with the list's newline; Quill adds its own empty last line, as with y-quill.
    { insert: '\n' }
  ])
  assert.match(await alice.locator('.notice').textContent(), /Imported notes\.md/)

  // Export: the downloads are named after the title and hold the document.
  const download = async (format) => {
    await bob.click('.menu summary')
    const started = bob.waitForEvent('download')
    await bob.click(`.menu-item[data-format="${format}"]`)
    const file = await started
    return { name: file.suggestedFilename(), body: await readFile(await file.path(), 'utf8') }
  }
  const md = await download('markdown')
  assert.equal(md.name, 'Minutes.md')
  assert.equal(md.body, MARKDOWN)
  const html = await download('html')
  assert.equal(html.name, 'Minutes.html')
  assert.match(html.body, /<h1>会议纪要<\/h1>/)
  assert.match(html.body, /<strong>three<\/strong>/)
  const txt = await download('text')
  assert.equal(txt.name, 'Minutes.txt')
  assert.match(txt.body, /^会议纪要\nWe agreed on three things:\n/)
})

test('an unsupported file is refused with a message and changes nothing', async () => {
  const docId = uniqueDocId('e2e-menu-bad')
  const page = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  await page.click('.ql-editor')
  await page.keyboard.type('keep me')
  page.on('dialog', (dialog) => dialog.accept())
  const before = await contents(page)
  await importFile(page, 'slides.pdf', '%PDF-1.4')
  await waitFor(async () => !(await page.locator('.notice').isHidden()), TIMEOUT_MS, 'an error notice')
  assert.match(await page.locator('.notice').textContent(), /Could not import slides\.pdf: .*\.pdf/)
  assert.deepEqual(await contents(page), before)
  const response = await ownerFetch(env.server, `/api/docs/${docId}/content?format=text`)
  assert.equal(await response.text(), 'keep me')
})

test('the documents list shows titles newest first, and New document opens a fresh editor', async () => {
  const context = await newUser(env.browser, 'Alice')
  const older = await openEditor(context, env.server, uniqueDocId('e2e-list-a'))
  await older.fill('.title', 'Older document')
  const newer = await openEditor(context, env.server, uniqueDocId('e2e-list-b'))
  await newer.fill('.title', 'Newer document')
  await newer.click('.ql-editor')
  await newer.keyboard.type('x')

  const list = await context.newPage()
  // Metadata is written within a couple of seconds of a change: poll the page as a user would
  // reload it.
  await waitFor(async () => {
    await list.goto(`${env.server.httpUrl}/`)
    const titles = await list.locator('.doc-title').allTextContents()
    const a = titles.indexOf('Older document')
    const b = titles.indexOf('Newer document')
    return a >= 0 && b >= 0 && b < a
  }, 3 * TIMEOUT_MS, 'both titles in the list, newest first')

  await list.click('[data-action="new"]')
  await list.waitForURL(/\/d\/[a-z0-9]{16}$/)
  await list.waitForFunction(() => window.quire?.session.synced)
  assert.equal(await text(list), '\n')
  assert.equal(await list.inputValue('.title'), '')
})

test('a document renamed in one tab shows its new name in the documents list of another, the first still open', async () => {
  const context = await newUser(env.browser, 'Alice')
  const docId = uniqueDocId('e2e-rename')
  const editor = await openEditor(context, env.server, docId)
  await editor.click('.title')
  // Typed key by key, as a person does: the list must show the last keystroke, not the first.
  await editor.keyboard.type('Q1 plan')
  await editor.click('.ql-editor')
  await editor.keyboard.type('Revenue')

  const list = await context.newPage()
  let titles = []
  await waitFor(async () => {
    await list.goto(`${env.server.httpUrl}/`)
    titles = await list.locator(`.doc[data-id="${docId}"] .doc-title`).allTextContents()
    return titles[0] === 'Q1 plan'
  }, TIMEOUT_MS, 'the new name in the other tab\'s list', () => JSON.stringify(titles))
  assert.equal(await editor.inputValue('.title'), 'Q1 plan', 'the editor is still open with its title')
})

test('a document deleted through the API is closed in the editor and leaves this device', async () => {
  const docId = uniqueDocId('e2e-deleted')
  const page = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  await page.click('.ql-editor')
  await page.keyboard.type('soon gone')
  await waitFor(async () => (await ownerFetch(env.server, `/api/docs/${docId}/content?format=text`)
    .then((r) => r.text())) === 'soon gone', TIMEOUT_MS, 'the text on the server')
  // And this device knows it (with changes it cannot prove the server had, it would offer them
  // for download before letting the copy go: copies.test.mjs).
  await waitFor(async () => (await page.locator('.status .label').textContent()) === 'All changes synced',
    TIMEOUT_MS, 'the editor to know its changes are synced')
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`, { method: 'DELETE' })).status, 204)
  await waitFor(async () => (await page.locator('.status .label').textContent()) === 'This document was deleted',
    TIMEOUT_MS, 'the editor to say so')
  assert.equal(await page.locator('.ql-editor').getAttribute('contenteditable'), 'false')
  await waitFor(() => page.evaluate((id) => window.quire.store.doc(id).then((doc) => doc === undefined), docId),
    TIMEOUT_MS, 'the device copy to be removed')
  // Reopening does not bring it back.
  await page.reload()
  await waitFor(async () => (await page.locator('.status .label').textContent()) === 'This document was deleted',
    TIMEOUT_MS, 'the reopened editor to say so')
  assert.equal((await ownerFetch(env.server, `/api/docs/${docId}`)).status, 404)
})
