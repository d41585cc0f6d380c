// Helpers for the browser tests: one headless Chromium (the Debian package, driven by
// playwright-core), quire's app served by the real binary, and pages that read what a user
// sees. Waits poll for a condition; nothing sleeps for a fixed time to "let things settle".

import { after, before } from 'node:test'
import path from 'node:path'
import { mkdir } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { chromium } from 'playwright-core'

import { startServer, TIMEOUT_MS, waitFor } from '../node/support.mjs'

export { startServer, TIMEOUT_MS, waitFor, uniqueDocId, sleep } from '../node/support.mjs'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/** Screenshots and other things a person should look at after a run. */
export const artifactsDir = path.join(repoRoot, 'target', 'e2e-artifacts')

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium'

/** quire with the built app (`cargo xtask web` → web/dist), with access control on, as
 * deployed: its owner key is `server.ownerKey`, and `openEditor` signs a browser in with it. */
export function startQuire (options = {}) {
  const webDir = path.join(repoRoot, 'web', 'dist')
  const ownerKey = options.ownerKey ?? `e2e-owner-${randomBytes(8).toString('hex')}`
  return startServer({ ...options, ownerKey, args: ['--web-dir', webDir, ...(options.args ?? [])] })
}

/** Signs the browser context in as the owner of `server`, as opening the printed sign-in URL
 * does (its cookie then holds for every page of the context). */
export async function signIn (context, server) {
  const reply = await context.request.get(`${server.httpUrl}/?key=${server.ownerKey}`, { maxRedirects: 0 })
  if (reply.status() !== 303) throw new Error(`sign-in answered ${reply.status()}`)
}

/**
 * One quire server and one headless Chromium for a test file: started before its tests,
 * stopped after them. `const env = useQuire()`, then `env.server` and `env.browser` in tests.
 */
export function useQuire () {
  const env = { server: null, browser: null }
  before(async () => {
    env.server = await startQuire()
    env.browser = await launchBrowser()
  })
  after(async () => {
    await env.browser?.close()
    await env.server?.stop()
  })
  return env
}

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'
  ]
}

/** Headless Chromium; every context gets a fresh profile (playwright's default). */
export function launchBrowser () {
  return chromium.launch(LAUNCH)
}

/** Chromium on a profile directory that outlives it (to restart "the same browser"), with
 * `name` as its user. */
export async function launchProfile (dir, name, options = {}) {
  const context = await chromium.launchPersistentContext(dir, { ...LAUNCH, ...options })
  await context.addInitScript(([user]) => {
    localStorage.setItem('quire.user', JSON.stringify(user))
  }, [{ name, color: '#1a73e8' }])
  return context
}

/**
 * A new browser context (its own storage, like another person's machine) whose user has
 * already picked `name`, so the editor opens without asking.
 */
export async function newUser (browser, name, color = '#1a73e8') {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } })
  await context.addInitScript(([user]) => {
    localStorage.setItem('quire.user', JSON.stringify(user))
  }, [{ name, color }])
  return context
}

/** `fetch` to `server`'s API as its owner (the owner key as a bearer token). */
export function ownerFetch (server, path, init = {}) {
  const headers = { ...(init.headers ?? {}), ...(server.ownerKey ? { authorization: `Bearer ${server.ownerKey}` } : {}) }
  return fetch(`${server.httpUrl}${path}`, { ...init, headers })
}

/** Opens `/d/{docId}` as the owner (signed in first, if the server has an owner key) and waits
 * for the first sync. */
export async function openEditor (context, server, docId) {
  if (server.ownerKey) await signIn(context, server)
  const page = await context.newPage()
  const errors = []
  page.on('pageerror', (error) => errors.push(error))
  page.errors = errors
  await page.goto(`${server.httpUrl}/d/${docId}`)
  await page.waitForFunction(() => window.quire?.session.synced, null, { timeout: TIMEOUT_MS })
  return page
}

/** The editor's content as Quill Delta ops. */
export function contents (page) {
  return page.evaluate(() => window.quire.quill.getContents().ops)
}

/** The editor's plain text. */
export function text (page) {
  return page.evaluate(() => window.quire.quill.getText())
}

/** Puts the caret at `index` (UTF-16 units) as a click would. */
export async function caretAt (page, index) {
  await page.evaluate((i) => window.quire.quill.setSelection(i, 0, 'user'), index)
}

/** Chooses a heading level for the caret's line from the toolbar, as a user does. */
export async function heading (page, level) {
  await page.click('.ql-toolbar .ql-header .ql-picker-label')
  await page.click(`.ql-toolbar .ql-header .ql-picker-item[data-value="${level}"]`)
}

/** Waits until every page shows the same Delta, and returns it. */
export async function waitConverged (pages, what = 'the editors to converge') {
  let last = []
  await waitFor(async () => {
    last = await Promise.all(pages.map(contents))
    return last.every((ops) => isDeepStrictEqual(ops, last[0]))
  }, TIMEOUT_MS, what, () => last.map((ops) => JSON.stringify(ops)).join('\n  vs '))
  return last[0]
}

export async function screenshot (page, name) {
  await mkdir(artifactsDir, { recursive: true })
  const file = path.join(artifactsDir, name)
  await page.screenshot({ path: file })
  return file
}
