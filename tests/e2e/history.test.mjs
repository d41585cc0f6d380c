// File → Version history, as the issue tells it: two people edit; one opens the panel, sees both
// names in their colours, selects the other's version and sees that person's insertion in their
// colour, restores the earlier version; the other's editor shows the restored text live. The
// panel is saved as a screenshot with the artifacts.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'

import {
  launchBrowser, newUser, openEditor, ownerFetch, screenshot, startQuire, text, TIMEOUT_MS, uniqueDocId, waitConverged,
  waitFor
} from './support.mjs'

const ALICE = '#d93025'
const BOB = '#1a73e8'
const env = { server: null, browser: null }

before(async () => {
  // A burst settles after a second: versions come while the test waits for them.
  env.server = await startQuire({ args: ['--version-settle-secs', '1'] })
  env.browser = await launchBrowser()
})
after(async () => {
  await env.browser?.close()
  await env.server?.stop()
})

async function versions (docId) {
  const reply = await ownerFetch(env.server, `/api/docs/${docId}/versions`)
  assert.equal(reply.status, 200)
  return (await reply.json()).versions
}

async function waitVersions (docId, predicate, what) {
  let seen = []
  await waitFor(async () => predicate(seen = await versions(docId)), TIMEOUT_MS, what, () => JSON.stringify(seen))
}

const editorNames = (version) => version.editors.map((e) => e.name).sort()

/** `rgb(r, g, b)` of `#rrggbb`, as the browser reports a computed colour. */
function rgb (hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16))
  return `rgb(${r}, ${g}, ${b})`
}

test('Version history: both editors by colour, the other\'s insertion highlighted, a restore seen live', async () => {
  const docId = uniqueDocId('e2e-history')
  const alice = await openEditor(await newUser(env.browser, 'Alice', ALICE), env.server, docId)
  const bob = await openEditor(await newUser(env.browser, 'Bob', BOB), env.server, docId)

  await alice.click('.ql-editor')
  await alice.keyboard.type('Alice wrote the plan.')
  await waitConverged([alice, bob])
  await waitVersions(docId, (all) => all.length === 1 && editorNames(all[0]).includes('Alice'), 'Alice\'s version')

  await bob.click('.ql-editor')
  await bob.keyboard.press('Control+End')
  await bob.keyboard.type(' Bob added a budget.')
  await waitConverged([alice, bob])
  await waitVersions(docId, (all) => all.length === 2 && editorNames(all[0]).includes('Bob'), 'Bob\'s version')

  // Alice opens the panel: both versions, newest first, each with its editors in their colours.
  await alice.click('.menu summary')
  await alice.click('[data-action="history"]')
  const items = alice.locator('.history .version')
  await waitFor(async () => (await items.count()) === 2, TIMEOUT_MS, 'two versions in the panel')
  assert.equal(await alice.locator('.history-day h3').first().textContent(), 'Today')
  const chips = await alice.$$eval('.history .version-editor', (nodes) =>
    nodes.map((node) => [node.textContent, getComputedStyle(node.querySelector('.swatch')).backgroundColor]))
  assert.deepEqual(chips, [['Bob', rgb(BOB)], ['Alice', rgb(ALICE)]])

  // Bob's version: his insertion in his colour, Alice's text as it was.
  await items.nth(0).click()
  const preview = alice.locator('.history-preview .ql-editor')
  await waitFor(async () => (await preview.textContent()).includes('Bob added'), TIMEOUT_MS, 'the version shown')
  assert.equal(await alice.locator('main.page').isHidden(), true, 'the live editor makes way for the version')
  assert.equal(await preview.getAttribute('contenteditable'), 'false')
  const colours = await preview.evaluate((root) => {
    const colourOf = (needle) => {
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT)
      while (walker.nextNode()) {
        if (walker.currentNode.textContent.includes(needle)) return getComputedStyle(walker.currentNode.parentElement).color
      }
      return null
    }
    return { bob: colourOf('Bob added'), alice: colourOf('Alice wrote') }
  })
  assert.equal(colours.bob, rgb(BOB), 'Bob\'s insertion in his colour')
  assert.notEqual(colours.alice, rgb(ALICE), 'kept text is not highlighted')
  const file = await screenshot(alice, 'history-panel.png')
  console.log(`# screenshot: ${file}`)

  // Alice restores her version; Bob, who did nothing, sees it live.
  await items.nth(1).click()
  await waitFor(async () => !(await preview.textContent()).includes('Loading'), TIMEOUT_MS, 'Alice\'s version shown')
  alice.once('dialog', (dialog) => dialog.accept())
  await alice.click('.preview-restore')
  await waitFor(async () => (await text(bob)) === 'Alice wrote the plan.\n', TIMEOUT_MS, 'Bob to see the restore',
    async () => JSON.stringify(await text(bob)))
  // The panel closed and Alice is back in the live document, restored too.
  await waitFor(async () => (await alice.locator('.history').count()) === 0, TIMEOUT_MS, 'the panel to close')
  assert.equal(await alice.locator('main.page').isVisible(), true)
  await waitConverged([alice, bob])
  await waitVersions(docId, (all) => all[0].kind === 'restore', 'the restore in the history')
  assert.deepEqual([alice.errors, bob.errors], [[], []])
})

test('a view link has no Version history; an edit link has it', async () => {
  const docId = uniqueDocId('e2e-history-links')
  const created = await ownerFetch(env.server, '/api/docs', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: docId, content: 'Shared.' })
  })
  assert.equal(created.status, 201)
  const link = async (role) => (await (await ownerFetch(env.server, `/api/docs/${docId}/links`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ role })
  })).json()).url
  const open = async (name, url) => {
    const page = await (await newUser(env.browser, name)).newPage()
    await page.goto(url)
    await page.waitForFunction(() => window.quire?.session.synced, null, { timeout: TIMEOUT_MS })
    await page.click('.menu summary')
    return page
  }
  const viewer = await open('Vera', await link('view'))
  // The menu sets its items when it opens (its toggle event).
  await viewer.waitForSelector('[data-action="import"]', { state: 'hidden' })
  assert.equal(await viewer.evaluate(() => window.quire.session.access.role), 'view')
  assert.equal(await viewer.locator('[data-action="history"]').isHidden(), true, 'no history for a view link')
  const editor = await open('Ed', await link('edit'))
  await editor.click('[data-action="history"]')
  await editor.waitForSelector('.history .version', { timeout: TIMEOUT_MS })
  assert.equal(await editor.locator('.history .version-editor').first().textContent(), 'Imported')
})
