// quire's editor and a stock one on the same document: a page built from the npm packages
// everyone else uses (quill, quill-cursors, y-quill, y-websocket, yjs; bundled here by esbuild
// from stock-page/entry.js, unchanged) connects to quire's /ws/{doc} like any y-websocket
// client. Two people type, format and move their carets, one in each editor: the text and its
// formatting converge, and each editor draws the other's caret, in the right place, with a name.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { createServer } from 'node:http'
import { build } from 'esbuild'

import {
  caretAt, contents, heading, newUser, openEditor, text, TIMEOUT_MS, uniqueDocId, useQuire,
  waitFor
} from './support.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

const env = useQuire()
let stockPage
before(async () => {
  const bundled = await build({
    entryPoints: [path.join(here, 'stock-page', 'entry.js')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    logLevel: 'silent'
  })
  const snowCss = await readFile(require.resolve('quill/dist/quill.snow.css'), 'utf8')
  stockPage = await serveStockPage(bundled.outputFiles[0].text, snowCss)
})
after(async () => {
  await stockPage?.close()
})

/**
 * Opens the stock page in a context of its own and waits for the provider's first sync.
 *
 * The page comes from a real HTTP server on 127.0.0.1 (see `serveStockPage`): Chromium's
 * local-network checks let a loopback page open a socket to quire on loopback, but block it
 * from a page that `context.route` fulfilled (such a page has no address, so it counts as
 * public: net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS).
 */
async function openStock (docId, user) {
  const context = await env.browser.newContext({ viewport: { width: 900, height: 700 } })
  const page = await context.newPage()
  watchErrors(page)
  // A stock client passes its token as y-websocket passes any parameter (`?token=`).
  const config = { wsBase: env.server.wsBase, docId, user, token: env.server.ownerKey }
  const query = new URLSearchParams({ config: JSON.stringify(config) })
  await page.goto(`${stockPage.url}/?${query}`)
  await page.waitForFunction(() => window.stock?.provider.synced, null, { timeout: TIMEOUT_MS })
    .catch(async (error) => {
      const state = await page.evaluate(() => window.stock
        ? { wsconnected: window.stock.provider.wsconnected, synced: window.stock.provider.synced }
        : 'window.stock is not set').catch((e) => e.message)
      throw new Error(`the stock page did not sync: ${error.message}\n  state: ${JSON.stringify(state)}` +
        `\n  problems: ${JSON.stringify(page.problems)}`)
    })
  return page
}

/** Serves the stock page (`/`, its config in the query string) and its bundle on 127.0.0.1. */
async function serveStockPage (js, css) {
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>stock y-quill</title>
<style>${css}</style>
<style>body { margin: 0; font-family: sans-serif } #editor { height: 600px }</style>
<script>window.STOCK_CONFIG = JSON.parse(new URLSearchParams(location.search).get('config'))</script>
<script type="module" src="/stock.js"></script>
</head><body><div id="editor"></div></body></html>`
  const httpServer = createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost')
    const [type, body] = pathname === '/' ? ['text/html', html]
      : pathname === '/stock.js' ? ['text/javascript', js] : [null, null]
    if (!type) {
      res.writeHead(pathname === '/favicon.ico' ? 204 : 404).end()
      return
    }
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(body)
  })
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${httpServer.address().port}`,
    close: () => new Promise((resolve) => {
      httpServer.closeAllConnections()
      httpServer.close(resolve)
    })
  }
}

/** Page errors and console errors (y-quill reports a caret it cannot place with console.error). */
function watchErrors (page) {
  page.problems = []
  page.on('pageerror', (error) => page.problems.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console.error: ${message.text()}`)
  })
}

const stockOps = (page) => page.evaluate(() => window.stock.quill.getContents().ops)
const stockText = (page) => page.evaluate(() => window.stock.quill.getText())
const stockSelect = (page, index, length = 0) =>
  page.evaluate(([i, n]) => window.stock.quill.setSelection(i, n, 'user'), [index, length])

/** The names on the other users' caret flags drawn in this editor. */
function caretNames (page) {
  return page.$$eval('.ql-cursor .ql-cursor-flag', (flags) => flags.map((f) => f.textContent.trim()))
}

/** The other users' carets as quill-cursors holds them: name and index range. */
function carets (page, quillPath) {
  return page.evaluate((p) => {
    const quill = p === 'stock' ? window.stock.quill : window.quire.quill
    return quill.getModule('cursors').cursors()
      .map((c) => ({ name: c.name, index: c.range?.index, length: c.range?.length }))
  }, quillPath)
}

/** Waits until the stock and the quire editor hold the same Delta, and returns it. */
async function converged (stock, quire, what = 'the stock and the quire editor to converge') {
  let last = []
  await waitFor(async () => {
    last = await Promise.all([stockOps(stock), contents(quire)])
    return JSON.stringify(last[0]) === JSON.stringify(last[1])
  }, TIMEOUT_MS, what, () => `stock ${JSON.stringify(last[0])}\n  vs quire ${JSON.stringify(last[1])}`)
  return last[0]
}

test('stock quill + y-quill + y-websocket and quire\'s editor: text, formatting and named carets', async () => {
  const docId = uniqueDocId('e2e-stock')
  const stock = await openStock(docId, { name: 'Stock', color: '#188038' })
  const quire = await openEditor(await newUser(env.browser, '王芳', '#d93025'), env.server, docId)
  watchErrors(quire)

  // The stock user writes a title line and a line with a bold word, with Control+b as usual.
  await stock.click('.ql-editor')
  await stock.keyboard.type('Shopping list 购物清单')
  await stock.keyboard.press('Enter')
  await stock.keyboard.type('Buy ')
  await stock.keyboard.press('Control+b')
  await stock.keyboard.type('apples')
  await stock.keyboard.press('Control+b')
  await stock.keyboard.type(' and pears')
  await waitFor(async () => (await text(quire)) === 'Shopping list 购物清单\nBuy apples and pears\n',
    TIMEOUT_MS, 'quire to show the stock user\'s two lines', () => 'text differs')

  // The quire user makes line 1 a heading from the toolbar, and writes two more lines, with an
  // emoji and a bold word.
  await quire.click('.ql-editor')
  await caretAt(quire, 'Shopping list'.length)
  await heading(quire, 1)
  await caretAt(quire, (await text(quire)).length - 1)
  await quire.keyboard.press('Enter')
  await quire.keyboard.type('王芳：我来买 🥚 ')
  await quire.keyboard.press('Control+b')
  await quire.keyboard.type('eggs')
  await quire.keyboard.press('Control+b')
  await quire.keyboard.type(' 和牛奶')
  await quire.keyboard.press('Enter')
  await quire.keyboard.type('完 ✅')
  await waitFor(async () => (await stockText(stock)).endsWith('eggs 和牛奶\n完 ✅\n'), TIMEOUT_MS,
    'the stock editor to show quire\'s lines', () => 'text differs')

  // Both at once, on different lines: the stock user extends line 2 and makes its end italic
  // by formatting a selection; the quire user extends line 3 and makes it a level-2 heading
  // through the API (as the toolbar would, with source 'user').
  await Promise.all([
    (async () => {
      const line2End = 'Shopping list 购物清单\nBuy apples and pears'.length
      await stockSelect(stock, line2End)
      await stock.keyboard.type(', 梨 🍐', { delay: 15 })
      await stockSelect(stock, line2End + 2, 4)
      await stock.keyboard.press('Control+i')
    })(),
    (async () => {
      await quire.evaluate(() => {
        const quill = window.quire.quill
        quill.setSelection(quill.getText().indexOf('和牛奶') + 3, 0, 'user')
      })
      await quire.keyboard.type(' today', { delay: 15 })
      await quire.evaluate(() => {
        const quill = window.quire.quill
        quill.formatLine(quill.getText().indexOf('和牛奶'), 1, 'header', 2, 'user')
      })
    })()
  ])

  const ops = await converged(stock, quire)
  assert.deepEqual(ops, [
    { insert: 'Shopping list 购物清单' },
    { insert: '\n', attributes: { header: 1 } },
    { insert: 'Buy ' },
    { insert: 'apples', attributes: { bold: true } },
    { insert: ' and pears, ' },
    { insert: '梨 🍐', attributes: { italic: true } },
    { insert: '\n王芳：我来买 🥚 ' },
    { insert: 'eggs', attributes: { bold: true } },
    { insert: ' 和牛奶 today' },
    { insert: '\n', attributes: { header: 2 } },
    { insert: '完 ✅\n' }
  ])
  // The stock replica's Y.Text, as quire's server relayed it, holds the same.
  const yDelta = await stock.evaluate(() => window.stock.ydoc.getText('content').toDelta())
  // (Quill's own final newline is not in it: y-quill's convention, which quire follows.)
  assert.deepEqual(yDelta, [...ops.slice(0, -1), { insert: '完 ✅' }])

  // Carets: the stock user selects "apples", the quire user puts the caret before "eggs".
  const apples = 'Shopping list 购物清单\nBuy '.length
  const eggs = (await text(quire)).indexOf('eggs')
  await stock.click('.ql-editor')
  await stockSelect(stock, apples, 'apples'.length)
  await quire.click('.ql-editor')
  await caretAt(quire, eggs)

  await waitFor(async () => (await caretNames(quire)).includes('Stock'), TIMEOUT_MS,
    'a caret named Stock in quire\'s editor', () => 'no caret named Stock')
  await waitFor(async () => (await caretNames(stock)).includes('王芳'), TIMEOUT_MS,
    'a caret named 王芳 in the stock editor', () => 'no caret named 王芳')
  // Each caret sits where its owner put it (the stock selection as a range).
  let seen
  await waitFor(async () => {
    seen = [await carets(quire, 'quire'), await carets(stock, 'stock')]
    return JSON.stringify(seen) === JSON.stringify([
      [{ name: 'Stock', index: apples, length: 'apples'.length }],
      [{ name: '王芳', index: eggs, length: 0 }]
    ])
  }, TIMEOUT_MS, 'each editor to draw the other\'s caret where it was put', () => JSON.stringify(seen))
  assert.deepEqual(await caretNames(quire), ['Stock'])
  assert.deepEqual(await caretNames(stock), ['王芳'])

  // The stock user types at the start: their caret moves there, and quire's caret, which its
  // owner left alone, moves along with "eggs" in the stock editor (relative positions).
  await stockSelect(stock, 0)
  await stock.keyboard.type('🛒 ')
  await waitFor(async () => {
    seen = [await carets(quire, 'quire'), await carets(stock, 'stock')]
    return JSON.stringify(seen) === JSON.stringify([
      [{ name: 'Stock', index: 3, length: 0 }],
      [{ name: '王芳', index: eggs + '🛒 '.length, length: 0 }]
    ])
  }, TIMEOUT_MS, 'the carets to follow the edit', () => JSON.stringify(seen))
  assert.equal((await converged(stock, quire))[0].insert, '🛒 Shopping list 购物清单')

  assert.deepEqual(stock.problems, [], 'errors on the stock page')
  assert.deepEqual(quire.problems, [], 'errors on quire\'s page')
  assert.deepEqual(quire.errors, [], 'page errors on quire\'s page')
})
