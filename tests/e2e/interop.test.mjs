// The browser app and a stock Yjs client in Node (npm `yjs` + `y-websocket`, the packages of
// the interop tests) on one document, with Chinese and emoji where UTF-16 offsets matter.

import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'

import { connectClient } from '../node/support.mjs'
import {
  caretAt, contents, newUser, openEditor, text, TIMEOUT_MS, uniqueDocId, useQuire,
  waitConverged, waitFor
} from './support.mjs'

const env = useQuire()
const clients = []
after(() => {
  for (const client of clients) client.destroy()
})

async function stockClient (docId) {
  const client = connectClient(env.server.wsBase, docId, { token: env.server.ownerKey })
  clients.push(client)
  await client.synced()
  return client
}

/** The stock client's body as Quill ops (y-quill renders exactly this). */
const stockDelta = (client) => client.text.toDelta()

test('a stock Yjs client and the browser edit and format each other\'s text', async () => {
  const docId = uniqueDocId('e2e-stock')
  const stock = await stockClient(docId)
  const page = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)

  // The Node client inserts and formats; the browser shows it.
  stock.doc.transact(() => {
    stock.text.insert(0, 'From Node\n')
    // No final newline: Quill shows one of its own after the last line, as with y-quill.
    stock.text.insert(10, 'bold words', { bold: true })
    stock.text.format(9, 1, { header: 2 })
  })
  await waitFor(async () => (await text(page)) === 'From Node\nbold words\n', TIMEOUT_MS,
    'the browser to show the stock client\'s text', () => 'different text')
  assert.deepEqual(await contents(page), [
    { insert: 'From Node' },
    { insert: '\n', attributes: { header: 2 } },
    { insert: 'bold words', attributes: { bold: true } },
    { insert: '\n' }
  ])
  assert.equal(await page.locator('.ql-editor h2').textContent(), 'From Node')
  assert.equal(await page.locator('.ql-editor strong').textContent(), 'bold words')

  // The browser types and formats; the Node client receives it.
  await page.click('.ql-editor')
  await caretAt(page, 'From Node\nbold words'.length)
  // Right after bold text Quill keeps typing bold; Ctrl+B turns it off.
  await page.keyboard.type(' and more')
  await page.keyboard.press('Control+b')
  await page.keyboard.type(' plain')
  await page.keyboard.press('Enter')
  await page.keyboard.press('Control+i')
  await page.keyboard.type('typed in Chromium')
  await waitFor(() => stock.text.toString().includes('typed in Chromium'), TIMEOUT_MS,
    'the stock client to receive the browser\'s typing', () => stock.text.toString())
  // The YText has no final newline; Quill always shows one after the last line.
  let shown = []
  await waitFor(async () => {
    shown = await contents(page)
    return isDeepStrictEqual([...stockDelta(stock), { insert: '\n' }], shown)
  }, TIMEOUT_MS, 'the stock client and the browser to hold the same Delta',
  () => `${JSON.stringify(stockDelta(stock))} in Node, ${JSON.stringify(shown)} in the browser`)
  assert.ok(stockDelta(stock).some((op) => op.insert === 'typed in Chromium' && op.attributes?.italic),
    JSON.stringify(stockDelta(stock)))
})

test('Chinese and emoji typed in one editor and inserted into by another end identical everywhere', async () => {
  const docId = uniqueDocId('e2e-cjk')
  const stock = await stockClient(docId)
  const alice = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob'), env.server, docId)

  const line = '今天天气很好😀，我们去公园👨‍👩‍👧吧🇨🇳'
  await alice.click('.ql-editor')
  await alice.keyboard.insertText(line)
  await waitFor(async () => (await text(bob)).startsWith(line), TIMEOUT_MS, 'Bob to see Alice\'s line')

  // Bob inserts in the middle, after the first emoji (UTF-16: "今天天气很好" is 6 units, 😀 is 2).
  await bob.click('.ql-editor')
  await caretAt(bob, 8)
  await bob.keyboard.insertText('（真的🌞）')
  // And after the family emoji (a ZWJ sequence of 8 units) with a bold word.
  const family = line.indexOf('👨‍👩‍👧') + '👨‍👩‍👧'.length + '（真的🌞）'.length
  await caretAt(bob, family)
  await bob.keyboard.press('Control+b')
  await bob.keyboard.insertText('一起')
  // Meanwhile the stock client appends at the end of the body.
  stock.text.insert(stock.text.length, '✅完成')

  const expected = '今天天气很好😀（真的🌞），我们去公园👨‍👩‍👧一起吧🇨🇳✅完成'
  const ops = await waitConverged([alice, bob], 'the two editors to converge')
  assert.equal(ops.map((op) => op.insert).join(''), `${expected}\n`)
  assert.deepEqual(ops.find((op) => op.attributes?.bold), { insert: '一起', attributes: { bold: true } })
  await waitFor(() => stock.text.toString().replace(/\n$/, '') === expected, TIMEOUT_MS,
    'the stock client to hold the same text', () => stock.text.toString())
  // Rendered text (what a user reads) is the same too.
  assert.equal(await alice.locator('.ql-editor').innerText(), await bob.locator('.ql-editor').innerText())
})

test('an embed from a stock client (an image) does not stop the editor', async () => {
  const docId = uniqueDocId('e2e-embed')
  const stock = await stockClient(docId)
  const page = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  stock.doc.transact(() => {
    stock.text.insert(0, 'before  after')
    stock.text.insertEmbed(7, { image: 'https://example.com/cat.png' })
  })
  // Shown as one stand-in character, so positions keep lining up.
  await waitFor(async () => (await text(page)) === 'before \ufffc after\n', TIMEOUT_MS, 'the text around the embed')
  // Typing after it still reaches everyone.
  await page.click('.ql-editor')
  await caretAt(page, 'before \ufffc after'.length)
  await page.keyboard.type(' and more')
  await waitFor(() => stock.text.toString().endsWith('after and more'), TIMEOUT_MS,
    'the stock client to receive typing after the embed', () => JSON.stringify(stock.text.toDelta()))
  assert.deepEqual(stock.text.toDelta()[1], { insert: { image: 'https://example.com/cat.png' } })
  assert.deepEqual(page.errors, [])
})
