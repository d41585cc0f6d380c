// Sharing, as the issue tells it: the owner signs in with the printed URL and shares a document
// with a view link and an edit link from the Share dialog; people who were never signed in open
// the links; the owner removes a link and its holder is told at once, keeping what they had not
// synced; a page from another site cannot use the owner's session. Also: a link holder's
// documents list, an expiring link, and no credentials at all. (copies.test.mjs: what becomes of
// a device's copy that the server will not take.)

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'

import WebSocket from 'ws'

import { newUser, ownerFetch, screenshot, text, TIMEOUT_MS, uniqueDocId, useQuire, waitFor } from './support.mjs'

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

async function waitText (page, predicate, what) {
  let seen
  await waitFor(async () => predicate(seen = await text(page)), TIMEOUT_MS, what, () => JSON.stringify(seen))
}

/** Clicks `selector` and returns the file it downloads: its suggested name and its text. */
async function download (page, selector) {
  const started = page.waitForEvent('download')
  await page.click(selector)
  const file = await started
  return { name: file.suggestedFilename(), body: await readFile(await file.path(), 'utf8') }
}

/** Opens a share link in a page of `context`, as clicking it in a mail does, and waits for the
 * first sync. */
async function openLink (context, url) {
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', (error) => page.errors.push(error))
  await page.goto(url)
  await page.waitForFunction(() => window.quire?.session.synced, null, { timeout: TIMEOUT_MS })
  return page
}

/** Collects the content security policy's violations in every page of `context`. */
function watchPolicy (context) {
  return context.addInitScript(() => {
    window.cspViolations = []
    document.addEventListener('securitypolicyviolation', (event) => {
      window.cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`)
    })
  })
}

/** Creates a link in the open Share dialog and returns its row's URL. */
async function createLink (page, { role, label, expires = '' }) {
  const before = await page.locator('.share-dialog .link').count()
  await page.selectOption('.share-dialog select[name="role"]', role)
  await page.selectOption('.share-dialog select[name="expires"]', expires)
  await page.fill('.share-dialog input[name="label"]', label)
  await page.click('.share-dialog [data-action="create-link"]')
  await waitFor(async () => (await page.locator('.share-dialog .link').count()) === before + 1, TIMEOUT_MS,
    `the ${role} link in the dialog`)
  const row = page.locator('.share-dialog .link').nth(before)
  return { row, url: await row.locator('input.link-url').inputValue() }
}

/** Serves `html` from another loopback port: another origin, the same site for cookies. */
async function serveOtherOrigin (html) {
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(html)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(resolve)
    })
  }
}

let otherOrigin
after(async () => {
  await otherOrigin?.close()
})

test('the owner shares a view and an edit link; removing the edit link tells its holder at once; another site gets nothing', async () => {
  const { server, browser } = env
  // The owner signs in with the URL quire printed.
  const ownerContext = await newUser(browser, 'Olivia', '#d93025')
  await ownerContext.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.httpUrl })
  await watchPolicy(ownerContext)
  const owner = await ownerContext.newPage()
  await owner.goto(`${server.httpUrl}/?key=${server.ownerKey}`)
  assert.equal(new URL(owner.url()).search, '', 'the key leaves the address bar')
  await owner.click('[data-action="new"]')
  await owner.waitForURL(/\/d\/[a-z0-9]{16}$/)
  await owner.waitForFunction(() => window.quire?.session.synced)
  const docId = new URL(owner.url()).pathname.split('/').pop()
  await owner.fill('.title', 'Board notes')
  await owner.click('.ql-editor')
  await owner.keyboard.type('Agenda.')

  // The Share dialog: a view link for the board, an edit link for Eve that expires in a day.
  await owner.click('[data-action="share"]')
  await owner.waitForSelector('.share-dialog[open]')
  const view = await createLink(owner, { role: 'view', label: 'For the board' })
  const edit = await createLink(owner, { role: 'edit', label: 'For Eve', expires: '86400' })
  for (const link of [view, edit]) assert.match(link.url, new RegExp(`^${server.httpUrl}/d/${docId}#token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`))
  assert.match(await view.row.textContent(), /Can view/)
  assert.match(await view.row.textContent(), /For the board/)
  assert.match(await view.row.textContent(), /Never expires/)
  assert.match(await edit.row.textContent(), /Can edit/)
  assert.match(await edit.row.textContent(), /Expires/)
  await edit.row.locator('[data-action="copy"]').click()
  await waitFor(async () => (await owner.evaluate(() => navigator.clipboard.readText())) === edit.url, TIMEOUT_MS,
    'the edit link on the clipboard')
  const shot = await screenshot(owner, 'share-dialog.png')
  console.log(`# screenshot: ${shot}`)
  // The dialog lists the links again when opened again (the server has them).
  await owner.click('.share-dialog [data-action="close"]')
  await owner.click('[data-action="share"]')
  await waitFor(async () => (await owner.locator('.share-dialog .link').count()) === 2, TIMEOUT_MS, 'both links listed')
  await owner.click('.share-dialog [data-action="close"]')
  // The owner opening one of their own links still owns the document (their session outranks it).
  const own = await openLink(ownerContext, view.url)
  assert.equal(await own.locator('.view-only').isVisible(), false)
  assert.equal(await editable(own), 'true')
  assert.equal(await own.locator('[data-action="share"]').count(), 1)
  await own.close()

  // Eve, never signed in, opens the edit link and edits. Her socket goes through a hook that
  // can hold what she sends from the server (her edits then stay unsynced, on her device).
  const eveContext = await newUser(browser, 'Eve', '#188038')
  await watchPolicy(eveContext)
  let holdEve = false
  await eveContext.routeWebSocket(/\/ws\//, (socket) => {
    const upstream = socket.connectToServer()
    socket.onMessage((message) => { if (!holdEve) upstream.send(message) })
  })
  const eve = await openLink(eveContext, edit.url)
  assert.equal(new URL(eve.url()).hash, '', 'the token leaves the address bar')
  assert.equal(await eve.locator('.view-only').isVisible(), false)
  assert.equal(await eve.locator('[data-action="share"]').count(), 0, 'only the owner shares')
  await eve.click('.ql-editor')
  await eve.keyboard.press('Control+End')
  await eve.keyboard.type(' Eve was here.')

  // Victor opens the view link: he sees both of them typing, live, and cannot type.
  const victorContext = await newUser(browser, 'Victor', '#9334e6')
  const victor = await openLink(victorContext, view.url)
  assert.equal(await victor.locator('.view-only').textContent(), 'View only')
  assert.equal(await editable(victor), 'false')
  assert.equal(await victor.locator('.title').evaluate((input) => input.readOnly), true)
  assert.equal(await victor.inputValue('.title'), 'Board notes')
  await owner.click('.ql-editor')
  await owner.keyboard.press('Control+End')
  await owner.keyboard.type(' Owner again.')
  await eve.keyboard.type(' And Eve.')
  await waitText(victor, (t) => t.includes('Owner again.') && t.includes('Eve was here.') && t.includes('And Eve.'),
    'Victor to see both typing')
  const shown = await text(victor)
  // (In the page's margin: the others' carets lie over the text.)
  await victor.locator('.ql-editor').click({ position: { x: 20, y: 20 } })
  await victor.keyboard.type('Victor tries')
  await victor.locator('.title').press('End')
  await victor.keyboard.type(' (Victor)')
  assert.equal(await text(victor), shown)
  assert.equal(await victor.inputValue('.title'), 'Board notes')
  assert.equal(await victor.evaluate(() => window.quire.session.local.pending), false, 'no local edit kept')
  console.log(`# screenshot: ${await screenshot(victor, 'view-only.png')}`)
  // Presence still shows, both ways.
  await waitFor(async () => /Olivia/.test(await victor.locator('.people').textContent()) &&
    /Eve/.test(await victor.locator('.people').textContent()), TIMEOUT_MS, 'Victor to see who is here')
  await waitFor(async () => /Victor/.test(await owner.locator('.people').textContent()), TIMEOUT_MS,
    'the owner to see Victor')

  // Eve's next words do not reach the server; then the owner removes her link.
  await waitText(owner, (t) => t.includes('And Eve.'), 'the owner to have Eve\'s words')
  holdEve = true
  await eve.keyboard.type(' Unsynced words.')
  await waitFor(() => eve.evaluate(() => window.quire.session.local.pending), TIMEOUT_MS, 'Eve\'s edit pending')
  await owner.click('[data-action="share"]')
  const removed = owner.waitForResponse((r) => r.request().method() === 'DELETE' && r.url().includes('/links/'))
  await owner.locator('.share-dialog .link', { hasText: 'For Eve' }).locator('[data-action="remove"]').click()
  assert.equal((await removed).status(), 204)
  await waitFor(async () => (await owner.locator('.share-dialog .link').count()) === 1, TIMEOUT_MS, 'one link left')
  await owner.click('.share-dialog [data-action="close"]')
  // Within 2 s of the removal, Eve is told, cannot type, and is offered her unsynced changes.
  await waitStatus(eve, 'Your access to this document was removed', 2000)
  assert.equal(await editable(eve), 'false')
  console.log(`# screenshot: ${await screenshot(eve, 'access-removed.png')}`)
  const file = await download(eve, '[data-action="download-changes"]')
  assert.equal(file.name, 'Board notes.md')
  const evesText = await text(eve)
  assert.ok(evesText.includes(' Unsynced words.'), evesText)
  assert.equal(file.body, evesText)
  // Her copy keeps them: after a reload she is told again and may download them again.
  await eve.reload()
  await waitStatus(eve, 'Your access to this document was removed')
  assert.equal(await text(eve), evesText)
  assert.equal((await download(eve, '[data-action="download-changes"]')).body, evesText)
  // The server never got them; Victor, on the other link, goes on.
  const onServer = await (await ownerFetch(server, `/api/docs/${docId}/content?format=text`)).text()
  assert.ok(onServer.includes('And Eve.') && !onServer.includes('Unsynced'), onServer)
  assert.equal(await status(victor), 'All changes synced')

  // A page of another site in the owner's browser opens a socket to the document: the owner's
  // cookie goes with it (same site: ports do not count), and the server refuses the upgrade.
  // The same socket from quire's own page is the owner's, and gets the document.
  const port = new URL(server.httpUrl).port
  otherOrigin = await serveOtherOrigin(`<!doctype html><script>
    const ws = new WebSocket('ws://127.0.0.1:${port}/ws/${docId}')
    window.report = { messages: 0, closed: null }
    ws.onmessage = () => { window.report.messages += 1 }
    ws.onclose = (event) => { window.report.closed = event.code }
  </script>`)
  const probe = async (page) => page.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.onmessage = () => { ws.close(); resolve('message') }
    ws.onclose = () => resolve('closed')
  }), `ws://127.0.0.1:${port}/ws/${docId}`)
  assert.equal(await probe(owner), 'message', 'the owner\'s own page reads the document')
  const other = await ownerContext.newPage()
  await other.goto(otherOrigin.url)
  const report = await other.waitForFunction(() => window.report.closed !== null && window.report, null,
    { timeout: TIMEOUT_MS }).then((handle) => handle.jsonValue())
  assert.deepEqual(report, { messages: 0, closed: 1006 })
  // What the browser cannot show: the answer to that upgrade is 403, before any document data.
  const cookie = (await ownerContext.cookies(server.httpUrl)).map((c) => `${c.name}=${c.value}`).join('; ')
  const answer = await new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.wsBase}/${docId}`, { headers: { cookie, origin: otherOrigin.url.slice(0, -1) } })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode))
    ws.on('open', () => { ws.terminate(); resolve('open') })
    ws.on('error', reject)
  })
  assert.equal(answer, 403)

  for (const page of [owner, eve, victor]) assert.deepEqual(page.errors ?? [], [])
  // The dialog, the downloads and the notices run under the app's content security policy.
  for (const page of [owner, eve]) assert.deepEqual(await page.evaluate(() => window.cspViolations), [])
})

test('a link holder\'s documents list shows the documents opened on this device, each opening with its link', async () => {
  const { server, browser } = env
  const docId = uniqueDocId('e2e-holder-list')
  assert.equal((await ownerFetch(server, '/api/docs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: docId, title: 'Reading list', content: 'Read this.' })
  })).status, 201)
  const link = await (await ownerFetch(server, `/api/docs/${docId}/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'view' })
  })).json()
  const context = await newUser(browser, 'Lee')
  const page = await openLink(context, link.url)
  assert.equal(await page.inputValue('.title'), 'Reading list')

  await page.goto(`${server.httpUrl}/`)
  await page.waitForSelector(`.doc[data-id="${docId}"]`)
  assert.equal(await page.locator(`.doc[data-id="${docId}"] .doc-title`).textContent(), 'Reading list')
  assert.equal(await page.locator('[data-action="new"]').count(), 0, 'only the owner creates documents')
  assert.equal(await page.locator('.notice').isHidden(), true, 'no error: this is what a link holder has')
  assert.match(await page.locator('h1').textContent(), /on this device/)

  await page.click(`.doc[data-id="${docId}"] a`)
  await page.waitForURL(`${server.httpUrl}/d/${docId}`)
  await page.waitForFunction(() => window.quire?.session.synced, null, { timeout: TIMEOUT_MS })
  assert.equal(await text(page), 'Read this.\n')
  assert.equal(await page.locator('.view-only').textContent(), 'View only')
  assert.deepEqual(page.errors, [])
})

test('without a link or a sign-in the editor says what is needed instead of "Offline"', async () => {
  const docId = uniqueDocId('e2e-no-access')
  const context = await newUser(env.browser, 'Nobody')
  const page = await context.newPage()
  await page.goto(`${env.server.httpUrl}/d/${docId}`)
  await waitStatus(page, 'You need a share link or to sign in to open this document')
  assert.equal(await editable(page), 'false')
})

test('a link that expires closes the editor with "This link has expired", then and on reopening', async () => {
  const { server, browser } = env
  const docId = uniqueDocId('e2e-expiring')
  assert.equal((await ownerFetch(server, '/api/docs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: docId, content: 'Soon out of reach.' })
  })).status, 201)
  const link = await (await ownerFetch(server, `/api/docs/${docId}/links`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role: 'edit', expires_in_secs: 3 })
  })).json()
  const page = await openLink(await newUser(browser, 'Tess'), link.url)
  assert.ok((await text(page)).startsWith('Soon out of reach.\n'))
  await waitStatus(page, 'This link has expired', 3 * TIMEOUT_MS)
  assert.equal(await editable(page), 'false')
  await page.reload()
  await waitStatus(page, 'This link has expired')
  assert.ok((await text(page)).startsWith('Soon out of reach.\n'), 'the copy on the device still shows')
})

test('a wrong sign-in address signs nothing in and says so', async () => {
  const page = await (await newUser(env.browser, 'Mallory')).newPage()
  await page.goto(`${env.server.httpUrl}/?key=not-the-key`)
  await page.waitForSelector('.notice:not([hidden])')
  assert.match(await page.locator('.notice').textContent(), /sign-in address is not valid/)
  assert.equal(new URL(page.url()).hash, '', 'the address is clean again')
  assert.equal(await page.locator('[data-action="new"]').count(), 0, 'not the owner')
})
