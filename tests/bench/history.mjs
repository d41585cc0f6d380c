// Version history at scale: a document of 100 pages with 1,000 versions, then what the API and
// the Version history panel cost on it. The versions are named ones (each after a small edit
// posted as a Yjs update), so the thinning of automatic versions keeps them all.
//
//   node tests/bench/history.mjs [versions=1000] [pages=100]
//
// QUIRE_BIN picks the server binary (default target/release/quire); the app must be built
// (`cargo xtask web`) for the panel's figures.

import path from 'node:path'
import { execFileSync } from 'node:child_process'

import * as Y from 'yjs'

import { launchBrowser, newUser, openEditor, ownerFetch, repoRoot, startQuire, TIMEOUT_MS, waitFor } from '../e2e/support.mjs'
import { makeTempDir, removeTempDir } from '../node/support.mjs'

const versions = Number(process.argv[2] ?? 1000)
const pages = Number(process.argv[3] ?? 100)
process.env.QUIRE_BIN ??= path.join(repoRoot, 'target', 'release', 'quire')

/** A page of text: a heading and paragraphs, ~3,000 characters (a printed page holds ~500 words). */
function page (n) {
  const words = 'the quarterly plan covers hiring shipping budgets and the risks we see in each market'.split(' ')
  let out = `## Section ${n}\n\n`
  for (let p = 0; p < 6; p++) {
    const sentence = Array.from({ length: 80 }, (_, i) => words[(n * 7 + p * 3 + i) % words.length]).join(' ')
    out += `${sentence}.\n\n`
  }
  return out
}

/** Milliseconds `run` takes, median of `n`. */
async function timed (n, run) {
  const times = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    await run()
    times.push(performance.now() - start)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(n / 2)]
}

async function ok (reply) {
  if (!reply.ok) throw new Error(`${reply.status}: ${await reply.text()}`)
  return reply
}

const dataDir = await makeTempDir()
const server = await startQuire({ dataDir })
const docId = `history-bench-${Date.now()}`
const json = { 'content-type': 'application/json' }
const markdown = Array.from({ length: pages }, (_, n) => page(n)).join('')
await ok(await ownerFetch(server, '/api/docs', { method: 'POST', headers: json, body: JSON.stringify({ id: docId, content: markdown }) }))
const doc = new Y.Doc()
Y.applyUpdate(doc, new Uint8Array(await (await ok(await ownerFetch(server, `/api/docs/${docId}/content?format=yjs`))).arrayBuffer()))
const text = doc.getText('content')
console.log(`document: ${pages} pages, ${text.length.toLocaleString()} characters`)

const started = performance.now()
for (let v = 0; v < versions; v++) {
  const before = Y.encodeStateVector(doc)
  text.insert(Math.floor((v * 7919) % text.length), `edit ${v} `)
  const update = Y.encodeStateAsUpdate(doc, before)
  await ok(await ownerFetch(server, `/api/docs/${docId}/updates`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: update }))
  await ok(await ownerFetch(server, `/api/docs/${docId}/versions`, { method: 'POST', headers: json, body: JSON.stringify({ name: `v${v}` }) }))
}
const taking = performance.now() - started
console.log(`${versions} versions taken in ${(taking / 1000).toFixed(1)} s (${(taking / versions).toFixed(1)} ms each, edit + version)`)

const list = (query) => ownerFetch(server, `/api/docs/${docId}/versions${query}`).then(ok).then((r) => r.json())
const first = await list('?limit=100')
if (first.total !== versions) throw new Error(`expected ${versions} versions, the server has ${first.total}`)
const newest = first.versions[0].id
const oldest = (await list(`?offset=${versions - 1}&limit=1`)).versions[0].id
const get = (p) => () => ownerFetch(server, `/api/docs/${docId}${p}`).then(ok).then((r) => r.arrayBuffer())
const figures = {
  'list, first page (100)': await timed(9, () => list('?limit=100')),
  'list, last page': await timed(9, () => list(`?offset=${Math.max(0, versions - 100)}&limit=100`)),
  'diff, newest vs previous': await timed(5, get(`/versions/${newest}/diff`)),
  'diff, oldest vs now': await timed(5, get(`/versions/${oldest}/diff?against=current`)),
  'content, a version as Markdown': await timed(5, get(`/versions/${oldest}/content?format=markdown`))
}
for (const [what, ms] of Object.entries(figures)) console.log(`${what.padEnd(34)} ${ms.toFixed(1)} ms (median)`)
console.log(`data directory: ${execFileSync('du', ['-sh', dataDir]).toString().split('\t')[0]}`)

// The panel, in Chromium: opening it, selecting a version, scrolling to the oldest.
const browser = await launchBrowser()
try {
  const editor = await openEditor(await newUser(browser, 'Bench'), server, docId)
  let start = performance.now()
  await editor.click('.menu summary')
  await editor.click('[data-action="history"]')
  await editor.waitForSelector('.history .version', { timeout: TIMEOUT_MS })
  console.log(`panel: first versions shown ${(performance.now() - start).toFixed(0)} ms after the click`)
  start = performance.now()
  await editor.click('.history .version >> nth=0')
  await waitFor(async () => (await editor.locator('.history-preview .ql-editor').textContent()).includes('Section 99'), TIMEOUT_MS, 'the version')
  console.log(`panel: a version shown with its changes ${(performance.now() - start).toFixed(0)} ms after the click`)
  start = performance.now()
  await waitFor(async () => {
    await editor.locator('.history-list').evaluate((list) => { list.scrollTop = list.scrollHeight })
    return (await editor.locator('.history .version').count()) === versions
  }, 60_000, 'every version listed')
  console.log(`panel: scrolled through all ${versions} versions in ${(performance.now() - start).toFixed(0)} ms`)
  // Responsive: a frame comes within this long while the whole list is in the page.
  const frame = await editor.evaluate(() => new Promise((resolve) => {
    const start = performance.now()
    requestAnimationFrame(() => resolve(performance.now() - start))
  }))
  console.log(`panel: next frame after ${frame.toFixed(1)} ms with ${versions} versions in the list`)
} finally {
  await browser.close()
  await server.stop()
  await removeTempDir(dataDir)
}
