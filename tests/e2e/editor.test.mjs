// Two people in two browsers (separate contexts: separate storage, like two machines) edit one
// document: formatting, a late joiner, carets with names, and the screenshot a person checks.

import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  caretAt, contents, heading, newUser, openEditor, screenshot, text, TIMEOUT_MS, uniqueDocId,
  useQuire, waitConverged, waitFor
} from './support.mjs'

const env = useQuire()

/** The names on the other users' carets drawn in this editor. */
function caretNames (page) {
  return page.$$eval('.ql-cursor .ql-cursor-flag', (flags) => flags.map((f) => f.textContent.trim()))
}

test('two people type at once with bold and a heading; a late joiner sees it all with the title', async () => {
  const docId = uniqueDocId('e2e-two')
  const alice = await openEditor(await newUser(env.browser, 'Alice', '#d93025'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob', '#188038'), env.server, docId)

  await alice.click('.ql-editor')
  await alice.keyboard.type('Weekly plan')
  await alice.keyboard.press('Enter')
  await waitFor(async () => (await text(bob)).includes('Weekly plan\n'), TIMEOUT_MS, 'Bob to see the first line')

  // At the same time: Alice makes line 1 a heading and extends it; Bob writes line 2 with
  // a bold phrase. Keys go out interleaved, each side with its own edits in flight.
  await Promise.all([
    (async () => {
      await caretAt(alice, 'Weekly plan'.length)
      await heading(alice, 1)
      await alice.keyboard.type(' for the team', { delay: 15 })
    })(),
    (async () => {
      await bob.click('.ql-editor')
      await caretAt(bob, 'Weekly plan\n'.length)
      await bob.keyboard.type('Ship the ', { delay: 15 })
      await bob.keyboard.press('Control+b')
      await bob.keyboard.type('editor', { delay: 15 })
      await bob.keyboard.press('Control+b')
      await bob.keyboard.type(' on Friday.', { delay: 15 })
    })()
  ])
  await alice.fill('.title', 'Team plan 计划')

  const ops = await waitConverged([alice, bob])
  assert.deepEqual(ops, [
    { insert: 'Weekly plan for the team' },
    { insert: '\n', attributes: { header: 1 } },
    { insert: 'Ship the ' },
    { insert: 'editor', attributes: { bold: true } },
    { insert: ' on Friday.\n' }
  ])

  // Carol opens the document later: everything, formatting and title included.
  const carol = await openEditor(await newUser(env.browser, 'Carol', '#9334e6'), env.server, docId)
  assert.deepEqual(await waitConverged([alice, carol], 'the late joiner to catch up'), ops)
  await waitFor(async () => (await carol.inputValue('.title')) === 'Team plan 计划', TIMEOUT_MS,
    'the late joiner to see the title', () => 'title differs')
  assert.equal(await bob.inputValue('.title'), 'Team plan 计划')
  assert.deepEqual(await Promise.all([alice, bob, carol].map((p) => p.errors.length)), [0, 0, 0])
})

test('each editor shows the other users\' carets with their names, and a closed tab disappears', async () => {
  const docId = uniqueDocId('e2e-carets')
  const aliceContext = await newUser(env.browser, 'Alice', '#d93025')
  const alice = await openEditor(aliceContext, env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob', '#1a73e8'), env.server, docId)

  await alice.click('.ql-editor')
  await alice.keyboard.type('Alice was here. ')
  await bob.click('.ql-editor')
  await caretAt(bob, 5)
  await caretAt(alice, 10)

  await waitFor(async () => (await caretNames(alice)).includes('Bob'), TIMEOUT_MS, 'Bob\'s caret in Alice\'s editor',
    () => 'no caret named Bob')
  await waitFor(async () => (await caretNames(bob)).includes('Alice'), TIMEOUT_MS, 'Alice\'s caret in Bob\'s editor',
    () => 'no caret named Alice')
  // The caret sits where Bob put it: right after "Alice" in Alice's editor.
  const [caretLeft, wordRight] = await alice.evaluate(() => {
    const caret = document.querySelector('.ql-cursor .ql-cursor-caret').getBoundingClientRect()
    const range = document.createRange()
    const node = document.querySelector('.ql-editor p').firstChild
    range.setStart(node, 0)
    range.setEnd(node, 5)
    return [caret.left, range.getBoundingClientRect().right]
  })
  assert.ok(Math.abs(caretLeft - wordRight) < 4, `Bob's caret at x=${caretLeft}, "Alice" ends at x=${wordRight}`)
  const people = await bob.locator('.people').textContent()
  assert.match(people, /Alice/)
  assert.match(people, /Bob \(you\)/)

  await aliceContext.close()
  await waitFor(async () => (await caretNames(bob)).length === 0 &&
    !(await bob.locator('.people').textContent()).includes('Alice'),
  TIMEOUT_MS, 'Alice to disappear from Bob\'s editor')
})

test('screenshot: two users editing side by side', async () => {
  const docId = uniqueDocId('e2e-shot')
  const alice = await openEditor(await newUser(env.browser, '王芳', '#d93025'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob', '#1a73e8'), env.server, docId)
  await alice.fill('.title', 'Launch checklist 发布清单')
  await alice.click('.ql-editor')
  await alice.keyboard.type('Launch checklist')
  await heading(alice, 2)
  await alice.keyboard.press('End')
  await alice.keyboard.press('Enter')
  await alice.keyboard.type('欢迎大家一起编辑这份文档 🎉')
  await alice.keyboard.press('Enter')
  await bob.click('.ql-editor')
  await caretAt(bob, (await text(bob)).length - 1)
  await bob.keyboard.type('Bob: I will write the ')
  await bob.keyboard.press('Control+b')
  await bob.keyboard.type('release notes')
  await bob.keyboard.press('Control+b')
  await bob.keyboard.type('.')
  await caretAt(alice, 'Launch checklist\n'.length + 4)
  await waitConverged([alice, bob])
  await waitFor(async () => (await caretNames(alice)).includes('Bob') && (await caretNames(bob)).includes('王芳'),
    TIMEOUT_MS, 'both carets drawn')
  // Put the two windows next to each other in one picture.
  const [left, right] = await Promise.all([alice, bob].map((p) => p.screenshot()))
  const board = await (await env.browser.newContext({ viewport: { width: 1816, height: 700 } })).newPage()
  await board.setContent(`<body style="margin:0;display:flex;gap:16px;background:#444">
    <img src="data:image/png;base64,${left.toString('base64')}">
    <img src="data:image/png;base64,${right.toString('base64')}"></body>`)
  const file = await screenshot(board, 'two-users-side-by-side.png')
  console.log(`# screenshot: ${file}`)
  assert.ok((await contents(bob)).some((op) => op.attributes?.bold && op.insert === 'release notes'))
})

test('the local caret stays put when remote text arrives above it', async () => {
  const docId = uniqueDocId('e2e-caret')
  const alice = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob'), env.server, docId)
  await alice.click('.ql-editor')
  await alice.keyboard.type('first line\nsecond line')
  await waitFor(async () => (await text(bob)) === 'first line\nsecond line\n', TIMEOUT_MS, 'Bob to see both lines')

  // Bob's caret is after "second"; Alice inserts above it, Bob keeps typing where he was.
  await bob.click('.ql-editor')
  await caretAt(bob, 'first line\nsecond'.length)
  await caretAt(alice, 0)
  await alice.keyboard.type('新的 😀 ')
  await waitFor(async () => (await text(bob)).startsWith('新的 😀 '), TIMEOUT_MS, 'Bob to see Alice\'s insert')
  const selection = await bob.evaluate(() => window.quire.quill.getSelection())
  assert.deepEqual(selection, { index: '新的 😀 first line\nsecond'.length, length: 0 })
  await bob.keyboard.type(' (Bob)')
  const ops = await waitConverged([alice, bob])
  assert.equal(ops.map((op) => op.insert).join(''), '新的 😀 first line\nsecond (Bob) line\n')
})

test('undo takes back only one\'s own typing, never the loaded document or a collaborator\'s', async () => {
  const docId = uniqueDocId('e2e-undo')
  const alice = await openEditor(await newUser(env.browser, 'Alice'), env.server, docId)
  await alice.click('.ql-editor')
  await alice.keyboard.type('Alice wrote this.')
  const bob = await openEditor(await newUser(env.browser, 'Bob'), env.server, docId)
  await bob.click('.ql-editor')
  // Bob has typed nothing: undo must not remove what he loaded.
  await bob.keyboard.press('Control+z')
  await caretAt(bob, 0)
  await bob.keyboard.type('Bob: ')
  await waitFor(async () => (await text(alice)).startsWith('Bob: '), TIMEOUT_MS, 'Alice to see Bob')
  await caretAt(alice, (await text(alice)).length - 1)
  await alice.keyboard.type(' More.')
  await waitFor(async () => (await text(bob)).endsWith(' More.\n'), TIMEOUT_MS, 'Bob to see Alice')
  // Bob's undo removes "Bob: " and nothing of Alice's.
  await bob.keyboard.press('Control+z')
  const ops = await waitConverged([alice, bob])
  assert.equal(ops.map((op) => op.insert).join(''), 'Alice wrote this. More.\n')
})

test('the app runs under its content security policy without a single violation', async () => {
  const context = await newUser(env.browser, 'Alice')
  await context.addInitScript(() => {
    window.cspViolations = []
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`)
    })
  })
  const list = await context.newPage()
  // Signed in as the owner is: by opening the URL quire printed; the key leaves the address.
  const response = await list.goto(`${env.server.httpUrl}/?key=${env.server.ownerKey}`)
  assert.equal(new URL(list.url()).search, '')
  assert.match(response.headers()['content-security-policy'], /default-src 'self'/)
  await list.click('[data-action="new"]')
  await list.waitForURL(/\/d\/[a-z0-9]{16}$/)
  await list.waitForFunction(() => window.quire?.session.synced)
  await list.fill('.title', 'Policy')
  await list.click('.ql-editor')
  await list.keyboard.type('Typed under a strict policy. ')
  await list.keyboard.press('Control+b')
  await list.keyboard.type('Bold 加粗 😀')
  await heading(list, 2)
  await list.click('.menu summary')
  await list.waitForFunction(() => window.quire.session.local.pending === false)
  assert.deepEqual(await list.evaluate(() => window.cspViolations), [])
})
