// Offline-first: editing without a network or a server, the device's copy (IndexedDB), the
// app shell from the service worker, and merging when the connection returns.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'

import { connectClient, makeTempDir, removeTempDir } from '../node/support.mjs'
import {
  caretAt, contents, launchBrowser, launchProfile, newUser, openEditor, sleep, startQuire, text, TIMEOUT_MS,
  uniqueDocId, waitConverged, waitFor
} from './support.mjs'

let browser
const servers = []
before(async () => {
  browser = await launchBrowser()
})
after(async () => {
  await browser?.close()
  for (const server of servers) await server.stop().catch(() => {})
})

async function quire (options) {
  const server = await startQuire(options)
  servers.push(server)
  return server
}

/** A port that was free a moment ago, to restart a server where its clients look for it. */
function freePort () {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    }).on('error', reject)
  })
}

const status = (page) => page.locator('.status .label').textContent()

/** What a user with unsynced changes must read whenever the server is not confirming them,
 * whatever the browser's `navigator.onLine` says. */
const UNSYNCED = /changes saved on this device, not yet synced/

/**
 * Waits until every page tells its user that their changes are kept on the device and not
 * synced. A browser that reports the network gone is believed at once; one that does not is
 * found out by the app when the server stops answering (its answer timeout, 8 s), so this
 * waits longer than the usual timeout.
 */
async function waitUntold (pages) {
  let seen = []
  await waitFor(async () => {
    seen = await Promise.all(pages.map(status))
    return seen.every((label) => UNSYNCED.test(label))
  }, 2 * TIMEOUT_MS, 'each user to be told their changes are on this device, not yet synced',
  () => JSON.stringify(seen))
}

/**
 * Waits until every page says all its changes are synced. A browser that does not announce
 * the network's return is found by the app's next attempt, on its backoff (at most 30 s).
 */
async function waitSynced (pages) {
  let seen = []
  await waitFor(async () => {
    seen = await Promise.all(pages.map(status))
    return seen.every((label) => label === 'All changes synced')
  }, 45_000, 'every editor to sync', () => JSON.stringify(seen))
}

/**
 * The device's copy of `docId`, replayed into a fresh replica as opening the document does:
 * its body (`delta`, `text`), its title, and the kinds of its log entries in order.
 */
function deviceCopy (page, docId) {
  return page.evaluate(async (id) => {
    const { session, store } = window.quire
    const doc = new session.doc.constructor()
    const { entries } = await store.load(id)
    for (const entry of entries) {
      if (entry.kind === 'state') doc.applyState(entry.bytes)
      else doc.receive(entry.bytes)
    }
    const delta = doc.contentDelta()
    const copy = { delta, text: delta.map((op) => op.insert).join(''), title: doc.title(), kinds: entries.map((e) => e.kind) }
    doc.free()
    return copy
  }, docId)
}

const deviceText = async (page, docId) => (await deviceCopy(page, docId)).text

/** Runs `check` with a fresh stock client that has synced with the server, then closes it. */
async function withFreshClient (server, docId, check) {
  const client = connectClient(server.wsBase, docId, { token: server.ownerKey })
  try {
    await client.synced()
    await check(client)
  } finally {
    client.destroy()
  }
}

/** Waits until the page's service worker controls it (it then serves the app offline). */
function offlineReady (page) {
  return page.waitForFunction(async () => {
    await navigator.serviceWorker.ready
    return navigator.serviceWorker.controller !== null
  }, null, { timeout: TIMEOUT_MS })
}

test('two users edit the same paragraph offline, one reloads offline, both merge on reconnect', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-offline')
  const aliceContext = await newUser(browser, 'Alice')
  const bobContext = await newUser(browser, 'Bob')
  let alice = await openEditor(aliceContext, server, docId)
  const bob = await openEditor(bobContext, server, docId)
  await alice.click('.ql-editor')
  await alice.keyboard.type('The meeting is at ten.')
  await waitConverged([alice, bob])
  // The service worker must hold the app before the network goes (a reload first, so that it
  // controls the page).
  await alice.reload()
  await alice.waitForFunction(() => window.quire?.session.synced)
  await offlineReady(alice)

  await aliceContext.setOffline(true)
  await bobContext.setOffline(true)

  // Both edit the same paragraph.
  await alice.click('.ql-editor')
  await caretAt(alice, 'The meeting'.length)
  await alice.keyboard.type(' with 客户')
  await caretAt(alice, (await text(alice)).length - 1)
  await alice.keyboard.type(' Bring slides.')
  await bob.click('.ql-editor')
  await caretAt(bob, 'The meeting is at '.length)
  await bob.keyboard.press('Shift+End')
  await bob.keyboard.type('half past ten 🕥.')
  // Whether or not the browser admits it is offline, each user learns where their changes are.
  await waitUntold([alice, bob])

  // Alice reloads with no network: the app comes from the service worker, the text from
  // IndexedDB.
  await alice.reload()
  await alice.waitForFunction(() => window.quire?.quill)
  let shown = ''
  await waitFor(async () => (shown = await text(alice)).includes('Bring slides.'), TIMEOUT_MS,
    'Alice\'s offline edits after an offline reload', () => JSON.stringify(shown))
  assert.equal(await text(alice), 'The meeting with 客户 is at ten. Bring slides.\n')
  await waitUntold([alice])
  // The documents list (also from the service worker and the device) marks it as not synced.
  const list = await aliceContext.newPage()
  await list.goto(`${server.httpUrl}/`)
  await list.waitForSelector(`.doc[data-id="${docId}"]`)
  assert.equal(await list.locator(`.doc[data-id="${docId}"] .pending`).textContent(), 'Not synced')

  await aliceContext.setOffline(false)
  await bobContext.setOffline(false)
  await waitSynced([alice, bob])
  const ops = await waitConverged([alice, bob], 'the two editors to merge after reconnecting')
  const merged = ops.map((op) => op.insert).join('')
  // Both users' edits, each whole. (Where Alice's sentence lands relative to Bob's rewrite
  // of "ten." is the CRDT's call: she typed after text he deleted.)
  assert.ok(merged.startsWith('The meeting with 客户 is at '), merged)
  for (const part of [' Bring slides.', 'half past ten 🕥.']) {
    assert.equal(merged.split(part).length - 1, 1, `${JSON.stringify(part)} once in ${JSON.stringify(merged)}`)
  }
  assert.ok(!merged.includes('at ten.'), merged)
  await waitFor(async () => (await status(alice)) === 'All changes synced', TIMEOUT_MS, 'Alice synced')
  await list.reload()
  await list.waitForSelector(`.doc[data-id="${docId}"]`)
  assert.equal(await list.locator(`.doc[data-id="${docId}"] .pending`).count(), 0)
  // And the server has it: a fresh stock client sees the same.
  await withFreshClient(server, docId, (check) => assert.equal(check.text.toString(), merged.replace(/\n$/, '')))
})

test('the server is killed while a user types and restarts 5 s later; nothing typed is lost', async () => {
  const dataDir = await makeTempDir()
  const addr = `127.0.0.1:${await freePort()}`
  let server = await quire({ dataDir, addr })
  const docId = uniqueDocId('e2e-kill')
  const page = await openEditor(await newUser(browser, 'Alice'), server, docId)
  await page.click('.ql-editor')

  const typed = []
  let typing = true
  const typist = (async () => {
    for (let i = 0; typing; i++) {
      const word = `w${i} `
      await page.keyboard.type(word)
      typed.push(word)
      await sleep(40)
    }
  })()
  await waitFor(() => typed.length >= 10, TIMEOUT_MS, 'some typing before the crash')
  await server.kill()
  await waitFor(async () => /Reconnecting|Offline/.test(await status(page)), TIMEOUT_MS, 'the editor to notice')
  await sleep(5000)
  server = await quire({ dataDir, addr, ownerKey: server.ownerKey })
  // Typing goes on, so the indicator says "Saving…" between confirmations.
  await waitFor(async () => /^(Saving…|All changes synced)$/.test(await status(page)), 4 * TIMEOUT_MS,
    'the editor to reconnect on its own')
  await sleep(500)
  typing = false
  await typist
  // Once typing stops, the server confirms it has everything.
  await waitFor(async () => (await status(page)) === 'All changes synced', TIMEOUT_MS, 'the last words confirmed')

  const expected = typed.join('')
  assert.equal(await text(page), `${expected}\n`)
  try {
    await withFreshClient(server, docId, (check) => waitFor(() => check.text.toString() === expected, TIMEOUT_MS,
      'the server to have every character', () => `${check.text.length} of ${expected.length} characters`))
  } finally {
    await server.stop()
    await removeTempDir(dataDir)
  }
})

test('with the server stopped, a document opened before opens with its content', async () => {
  const dataDir = await makeTempDir()
  const server = await quire({ dataDir })
  const docId = uniqueDocId('e2e-down')
  const context = await newUser(browser, 'Alice')
  const page = await openEditor(context, server, docId)
  await page.fill('.title', 'Plan B')
  await page.click('.ql-editor')
  await page.keyboard.type('Written while the server was up. 离线也能打开。')
  await page.keyboard.press('Control+b')
  await page.keyboard.type(' Bold.')
  const before = await contents(page)
  await offlineReady(page)
  await page.waitForFunction(() => window.quire.session.local.flush().then(() => true))
  await page.close()
  await server.stop()

  const again = await context.newPage()
  await again.goto(`${server.httpUrl}/d/${docId}`)
  await again.waitForFunction(() => window.quire?.quill)
  assert.deepEqual(await contents(again), before)
  assert.equal(await again.inputValue('.title'), 'Plan B')
  assert.match(await status(again), /Reconnecting|Connecting|Offline/)

  // The documents list also comes up, from the device's copy.
  await again.goto(`${server.httpUrl}/`)
  await again.waitForSelector('.doc-title')
  assert.ok((await again.locator('.doc-title').allTextContents()).includes('Plan B'))
  await removeTempDir(dataDir)
})

test('without IndexedDB the user is told, and editing and syncing go on in memory', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-noidb')
  const context = await newUser(browser, 'Alice')
  await context.addInitScript(() => {
    // As in some private windows: opening the database fails.
    indexedDB.open = () => { throw new DOMException('IndexedDB is disabled', 'InvalidStateError') }
  })
  const page = await openEditor(context, server, docId)
  await waitFor(async () => !(await page.locator('.notice').isHidden()), TIMEOUT_MS, 'a notice')
  assert.match(await page.locator('.notice').textContent(), /cannot be saved on this device .*IndexedDB is disabled/)
  await page.click('.ql-editor')
  await page.keyboard.type('still works')
  await withFreshClient(server, docId, (check) =>
    waitFor(() => check.text.toString() === 'still works', TIMEOUT_MS, 'the edit to reach the server'))
  assert.deepEqual(page.errors, [])
})

test('a full device store is reported and editing goes on', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-quota')
  const context = await newUser(browser, 'Alice')
  await context.addInitScript(() => {
    // Every write to the log fails as it does when the origin's quota is used up.
    for (const method of ['add', 'put']) {
      const original = IDBObjectStore.prototype[method]
      IDBObjectStore.prototype[method] = function (...args) {
        if (this.name === 'log') throw new DOMException('quota exceeded', 'QuotaExceededError')
        return original.apply(this, args)
      }
    }
  })
  const page = await openEditor(context, server, docId)
  await page.click('.ql-editor')
  await page.keyboard.type('abc')
  await waitFor(async () => !(await page.locator('.notice').isHidden()), TIMEOUT_MS, 'a notice')
  assert.match(await page.locator('.notice').textContent(), /storage for quire is full/)
  await page.keyboard.type('def')
  assert.equal(await text(page), 'abcdef\n')
  assert.deepEqual(page.errors, [])
})

test('compacting the device copy keeps the loaded state identical', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-compact')
  const page = await openEditor(await newUser(browser, 'Alice'), server, docId)
  await page.fill('.title', '压缩 test')
  await page.click('.ql-editor')
  await page.keyboard.type('one two three 😀 ')
  await page.keyboard.press('Control+i')
  await page.keyboard.type('four')
  await caretAt(page, 4)
  await page.keyboard.press('Backspace')
  await page.evaluate(async () => {
    const { session, quill } = window.quire
    await session.local.flush()
    // New local edits after a compaction are appended to the state.
    session.commit(session.doc.applyQuillDelta([{ retain: 3 }, { insert: '!' }]))
    quill.setContents(session.doc.contentDelta(), 'api')
  })
  // Before: a state, then the change made after it (plus any keystroke whose append was still
  // in flight when that state was written: a compaction only removes entries it knows).
  let before
  await waitFor(async () => (before = await deviceCopy(page, docId)).kinds.at(-1) === 'message', TIMEOUT_MS,
    'the change after the compaction on the device')
  assert.deepEqual(before.kinds.slice(-2), ['state', 'message'])
  await page.evaluate(() => window.quire.session.local.flush())
  const after = await deviceCopy(page, docId)
  const live = await page.evaluate(() => window.quire.session.doc.contentDelta())
  assert.deepEqual(after.kinds, ['state'])
  assert.deepEqual(after.delta, before.delta)
  assert.deepEqual(after.delta, live)
  assert.equal(after.title, '压缩 test')
  assert.equal(live.map((op) => op.insert).join(''), 'one!two three 😀 four')
})

test('edits made offline survive a browser restart while still offline', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-restart')
  const profile = await makeTempDir()
  let context = await launchProfile(profile, 'Alice')
  try {
    const page = await openEditor(context, server, docId)
    await page.click('.ql-editor')
    await page.keyboard.type('online part. ')
    await page.reload()
    await page.waitForFunction(() => window.quire?.session.synced)
    await offlineReady(page)
    await context.setOffline(true)
    await caretAt(page, 'online part. '.length)
    await page.keyboard.type('离线部分 offline part.')
    await waitUntold([page])
    // A person closes the browser after typing, not within the same millisecond: wait until
    // the last keystroke is on the device (IndexedDB commits take a few ms).
    await waitFor(async () => (await deviceText(page, docId)) === 'online part. 离线部分 offline part.',
      TIMEOUT_MS, 'the last keystroke on the device')
    await context.close()

    // The browser starts again, the network still off.
    context = await launchProfile(profile, 'Alice', { offline: true })
    const again = await context.newPage()
    await again.goto(`${server.httpUrl}/d/${docId}`)
    await again.waitForFunction(() => window.quire?.quill)
    assert.equal(await text(again), 'online part. 离线部分 offline part.\n')
    await waitUntold([again])

    // Back online, the server gets it.
    await context.setOffline(false)
    await waitSynced([again])
    await withFreshClient(server, docId,
      (check) => assert.equal(check.text.toString(), 'online part. 离线部分 offline part.'))
  } finally {
    await context.close()
    await removeTempDir(profile)
  }
})

test('a state rescued into localStorage at unload is taken back into the device copy and synced', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-rescue')
  const context = await newUser(browser, 'Alice')
  const first = await openEditor(context, server, uniqueDocId('e2e-rescue-other'))
  // What a page leaves behind when it unloads with IndexedDB writes in flight.
  await first.evaluate((id) => {
    const doc = new window.quire.session.doc.constructor()
    doc.applyQuillDelta([{ insert: 'rescued 文本 ✅' }])
    const state = doc.encodeState()
    localStorage.setItem(`quire.rescue.${id}`, btoa(String.fromCharCode(...state)))
    doc.free()
  }, docId)
  const page = await openEditor(context, server, docId)
  assert.equal(await text(page), 'rescued 文本 ✅\n')
  await waitFor(() => page.evaluate((id) => localStorage.getItem(`quire.rescue.${id}`) === null, docId),
    TIMEOUT_MS, 'the rescued state to move into IndexedDB')
  assert.equal(await deviceText(page, docId), 'rescued 文本 ✅')
  await withFreshClient(server, docId, (check) =>
    waitFor(() => check.text.toString() === 'rescued 文本 ✅', TIMEOUT_MS, 'the server to have it'))
})

/**
 * A TCP relay to `port` that can stop relaying without closing anything, as a network that
 * reaches nothing does (a captive portal, a Wi-Fi with no uplink): the browser still believes
 * it is online and its socket stays open. `heal()` drops the dead connections and relays again.
 */
async function deadNetwork (port) {
  const pairs = new Set()
  let dead = false
  const relay = net.createServer((client) => {
    if (dead) {
      client.on('data', () => {}).on('error', () => {})
      pairs.add([client])
      return
    }
    const upstream = net.connect(port, '127.0.0.1')
    const pair = [client, upstream]
    pairs.add(pair)
    client.on('data', (data) => { if (!dead) upstream.write(data) })
    upstream.on('data', (data) => { if (!dead) client.write(data) })
    for (const socket of pair) {
      socket.on('error', () => {})
      socket.on('close', () => { for (const other of pair) other.destroy(); pairs.delete(pair) })
    }
  })
  await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${relay.address().port}`,
    cut () { dead = true },
    heal () {
      dead = false
      for (const pair of pairs) for (const socket of pair) socket.destroy()
    },
    close: () => new Promise((resolve) => {
      for (const pair of pairs) for (const socket of pair) socket.destroy()
      relay.close(resolve)
    })
  }
}

test('on a network that reaches nothing, the browser says online and the user is still told', async () => {
  const server = await quire()
  const network = await deadNetwork(Number(new URL(server.httpUrl).port))
  const docId = uniqueDocId('e2e-dead-network')
  const context = await newUser(browser, 'Alice')
  try {
    const page = await openEditor(context, { httpUrl: network.url, ownerKey: server.ownerKey }, docId)
    await page.click('.ql-editor')
    await page.keyboard.type('Before. ')
    await waitSynced([page])

    network.cut()
    await page.keyboard.type('During the outage.')
    await waitUntold([page])
    assert.equal(await page.evaluate(() => navigator.onLine), true, 'the browser believes it is online')

    network.heal()
    await waitSynced([page])
    await withFreshClient(server, docId,
      (check) => assert.equal(check.text.toString(), 'Before. During the outage.'))
  } finally {
    await context.close()
    await network.close()
  }
})

test('a browser that wrongly says it is offline still syncs', async () => {
  const server = await quire()
  const docId = uniqueDocId('e2e-wrongly-offline')
  const context = await newUser(browser, 'Alice')
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false })
  })
  try {
    const page = await openEditor(context, server, docId)
    assert.equal(await page.evaluate(() => navigator.onLine), false)
    await page.click('.ql-editor')
    await page.keyboard.type('Typed while the browser said offline.')
    await waitSynced([page])
    // It even announces going offline; the socket is dropped, and the next attempt finds the
    // server is there.
    await page.evaluate(() => window.dispatchEvent(new Event('offline')))
    await page.keyboard.type(' More.')
    await waitSynced([page])
    await withFreshClient(server, docId,
      (check) => assert.equal(check.text.toString(), 'Typed while the browser said offline. More.'))
  } finally {
    await context.close()
  }
})
