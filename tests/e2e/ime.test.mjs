// Input methods: Alice writes Chinese through an IME (composition events from Chromium's own
// IME path, driven over CDP) while Bob types above her caret. Each remote edit lands in the
// middle of a composition. Stock quill 2 + y-quill loses or doubles words here; quire must end
// with both editors identical and every word exactly once.

import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  caretAt, newUser, openEditor, text, TIMEOUT_MS, uniqueDocId, useQuire, waitConverged, waitFor
} from './support.mjs'

const env = useQuire()

/** What Alice "types" on her pinyin keyboard, and the characters she picks. */
const WORDS = [
  ['nihao', '你好'],
  ['shijie', '世界'],
  ['wenzhang', '文章'],
  ['xiezuo', '协作'],
  ['bianji', '编辑'],
  ['zhongwen', '中文']
]

/** The replica's text on `page` (what the document holds, whatever Quill shows). */
function replicaText (page) {
  return page.evaluate(() => window.quire.session.doc.contentDelta().map((op) => op.insert).join(''))
}

test('compositions stay whole while another user types above the caret', async () => {
  const docId = uniqueDocId('e2e-ime')
  const alice = await openEditor(await newUser(env.browser, 'Alice', '#d93025'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob', '#1a73e8'), env.server, docId)

  await alice.click('.ql-editor')
  await alice.keyboard.type('Notes\nAlice: ')
  await waitFor(async () => (await text(bob)) === 'Notes\nAlice: \n', TIMEOUT_MS, 'Bob to see the start')
  await bob.click('.ql-editor')

  const cdp = await alice.context().newCDPSession(alice)
  const bobTyped = []
  for (const [i, [pinyin, word]] of WORDS.entries()) {
    // Alice's caret is at the end of her line; she starts composing.
    await caretAt(alice, (await text(alice)).length - 1)
    for (let n = 1; n <= pinyin.length; n++) {
      const partial = pinyin.slice(0, n)
      await cdp.send('Input.imeSetComposition', { text: partial, selectionStart: n, selectionEnd: n })
      if (n === 2) {
        // Mid-composition, Bob types at the very top (above Alice's caret).
        const mark = `B${i} `
        bobTyped.push(mark.trim())
        await caretAt(bob, 0)
        await bob.keyboard.type(mark)
        // Wait until it is in Alice's replica: the remote change has arrived during her
        // composition (her editor holds it until the composition ends).
        await waitFor(async () => (await replicaText(alice)).includes(mark), TIMEOUT_MS,
          `Bob's "${mark}" to reach Alice mid-composition`)
      }
    }
    // She picks the characters: the composition commits.
    await cdp.send('Input.insertText', { text: word })
    await waitFor(async () => (await text(alice)).includes(word), TIMEOUT_MS, `"${word}" to be committed`)
  }

  const ops = await waitConverged([alice, bob], 'both editors to converge after the compositions')
  const final = ops.map((op) => op.insert).join('')
  const count = (s, part) => s.split(part).length - 1
  for (const [pinyin, word] of WORDS) {
    assert.equal(count(final, word), 1, `"${word}" once in ${JSON.stringify(final)}`)
    assert.equal(count(final, pinyin.slice(0, 2)), 0, `no leftover pinyin "${pinyin}" in ${JSON.stringify(final)}`)
  }
  for (const mark of bobTyped) assert.equal(count(final, mark), 1, `Bob's "${mark}" once in ${JSON.stringify(final)}`)
  // Alice's words are in order on her line, after everything Bob put at the top.
  assert.ok(final.endsWith(`Notes\nAlice: ${WORDS.map(([, w]) => w).join('')}\n`), JSON.stringify(final))
  // The replicas agree with what the editors show.
  assert.equal(await replicaText(alice), await replicaText(bob))
  assert.deepEqual([alice.errors.length, bob.errors.length], [0, 0])
})
