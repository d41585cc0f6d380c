// quire as a cluster: several processes on one Redis and one PostgreSQL serve the same
// documents, with stock Yjs clients (yjs + y-websocket from npm, unchanged) on different
// processes, directly or through HAProxy. Redis, PostgreSQL and HAProxy are the real ones.

import { test } from 'node:test'
import assert from 'node:assert/strict'

import { connectClient, sleep, tryUpgrade, uniqueDocId, waitFor, TIMEOUT_MS } from './support.mjs'
import { freshDatabase, startCluster, startHaproxy, startRedis } from './cluster.mjs'

async function cluster (t, n, options = {}) {
  const redis = await startRedis()
  const database = freshDatabase()
  const servers = await startCluster(n, { redis, database, ...options })
  const clients = []
  t.after(async () => {
    for (const client of clients) client.destroy()
    await Promise.all(servers.map((s) => s.stop().catch(() => {})))
    await redis.kill().catch(() => {})
  })
  const connect = (server, doc, opts) => {
    const client = connectClient(server.wsBase ?? server, doc, opts)
    clients.push(client)
    return client
  }
  return { redis, database, servers, connect }
}

const same = (clients) => {
  const first = JSON.stringify(clients[0].text.toDelta())
  return clients.every((c) => JSON.stringify(c.text.toDelta()) === first)
}

const closes = (client) => {
  const codes = []
  client.provider.on('connection-close', (event) => { if (event) codes.push(event.code) })
  return codes
}

test('three processes: clients on each converge (Chinese, emoji, formatting), presence crosses, a late joiner on a third gets everything', async (t) => {
  const { servers: [a, b, c], connect } = await cluster(t, 3)
  const doc = uniqueDocId('cluster')
  const onA = connect(a, doc)
  const onB = connect(b, doc)
  await Promise.all([onA.synced(), onB.synced()])

  onA.text.insert(0, '你好，世界 👩‍💻 ')
  onB.text.insert(0, 'bold', { bold: true })
  onB.text.insert(4, ' plain ')
  onA.awareness.setLocalStateField('user', { name: 'Ann on A' })
  onB.awareness.setLocalStateField('user', { name: 'Bo on B' })

  await waitFor(() => same([onA, onB]) && onA.text.length > 15, TIMEOUT_MS, 'A and B to converge',
    () => `A=${JSON.stringify(onA.text.toDelta())} B=${JSON.stringify(onB.text.toDelta())}`)
  assert.ok(onA.text.toDelta().some((op) => op.attributes?.bold && op.insert.startsWith('bold')), 'formatting crossed')
  const names = (client) => [...client.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean).sort()
  await waitFor(() => names(onB).includes('Ann on A') && names(onA).includes('Bo on B'), TIMEOUT_MS,
    'presence to cross processes', () => `A sees ${names(onA)}, B sees ${names(onB)}`)

  const late = connect(c, doc)
  await late.synced()
  await waitFor(() => same([onA, late]), TIMEOUT_MS, 'the late joiner on C to have everything')
  assert.equal(late.text.toString(), onA.text.toString())
  await waitFor(() => names(late).join() === 'Ann on A,Bo on B', TIMEOUT_MS, 'the late joiner to see everyone',
    () => names(late).join())

  // A client leaving A: its presence goes from B and C as well.
  onA.provider.disconnect()
  await waitFor(() => !names(late).includes('Ann on A') && !names(onB).includes('Ann on A'), TIMEOUT_MS,
    'a departure on A to reach B and C', () => `B: ${names(onB)}; C: ${names(late)}`)
})

test('an import through the API of one process reaches clients on another at once; a delete on A closes clients on B and C', async (t) => {
  const { servers: [a, b, c], connect } = await cluster(t, 3)
  const doc = uniqueDocId('cluster-api')
  const onB = connect(b, doc)
  const onC = connect(c, doc)
  await Promise.all([onB.synced(), onC.synced()])
  onC.text.insert(0, 'typed on C')
  await waitFor(() => onB.text.toString() === 'typed on C', TIMEOUT_MS, 'C to reach B')

  const put = await fetch(`${a.httpUrl}/api/docs/${doc}/content`, {
    method: 'PUT',
    headers: { 'content-type': 'text/markdown; charset=utf-8' },
    body: '# 导入 from A\n\nimported **text**\n'
  })
  assert.ok(put.ok, `the import succeeded: ${put.status}`)
  await waitFor(() => onB.text.toString().includes('imported text') && onC.text.toString().includes('imported text'),
    TIMEOUT_MS, 'the import on A to reach B and C', () => `B=${onB.text.toString()}`)
  assert.ok(!onB.text.toString().includes('typed on C'), 'an import replaces the content')

  const codesB = closes(onB)
  const codesC = closes(onC)
  const started = Date.now()
  const del = await fetch(`${a.httpUrl}/api/docs/${doc}`, { method: 'DELETE' })
  assert.equal(del.status, 204, await del.text())
  await waitFor(() => codesB.includes(4410) && codesC.includes(4410), TIMEOUT_MS,
    'clients on B and C to be closed with 4410', () => `B ${codesB} C ${codesC}`)
  const took = Date.now() - started
  assert.ok(took < 1000, `clients on other processes closed within 1 s of the delete (took ${took} ms)`)
  // And the document is gone on every process.
  for (const server of [a, b, c]) {
    const res = await fetch(`${server.httpUrl}/api/docs/${doc}/content?format=text`)
    assert.equal(res.status, 404)
  }
})

test('kill -9 of one process while 8 clients type into 4 documents through HAProxy: every character reaches every process and a fresh client', async (t) => {
  const { servers, connect } = await cluster(t, 3)
  const lb = await startHaproxy(servers)
  t.after(() => lb.stop())
  const docs = [0, 1, 2, 3].map((i) => uniqueDocId(`crash${i}`))
  const writers = docs.flatMap((doc) => [connect(lb, doc), connect(lb, doc)])
  // Typing on during a reconnect must never get a writer refused (4400): it resyncs.
  const refused = writers.map(closes)
  await Promise.all(writers.map((w) => w.synced()))

  // Each writer types its own marked words, one every 20 ms.
  let typing = true
  const typed = writers.map(() => [])
  const loops = writers.map(async (writer, i) => {
    for (let n = 0; typing; n++) {
      const word = `w${i}.${n} `
      writer.text.insert(writer.text.length, word)
      typed[i].push(word)
      await sleep(20)
    }
  })
  await sleep(1500)
  // The process holding the most connections dies mid-typing.
  const counts = await Promise.all(servers.map(async (s) => {
    const body = await (await fetch(`${s.httpUrl}/metrics`)).text()
    return Number(/^quire_connections_open (\d+)/m.exec(body)?.[1] ?? 0)
  }))
  const victim = counts.indexOf(Math.max(...counts))
  assert.ok(counts[victim] > 0, `some process holds connections: ${counts}`)
  await servers[victim].kill()
  await sleep(3000)
  typing = false
  await Promise.all(loops)

  const survivors = servers.filter((_, i) => i !== victim)
  for (const [d, doc] of docs.entries()) {
    const pair = [writers[2 * d], writers[2 * d + 1]]
    await waitFor(() => pair.every((w) => w.provider.wsconnected && w.provider.synced) && same(pair), 30_000,
      `the writers of ${doc} to reconnect and converge`,
      () => pair.map((w) => `connected=${w.provider.wsconnected} synced=${w.provider.synced} length=${w.text.length}`).join('; '))
    const words = [...typed[2 * d], ...typed[2 * d + 1]]
    for (const server of survivors) {
      const fresh = connect(server, doc)
      await fresh.synced()
      await waitFor(() => words.every((w) => fresh.text.toString().includes(w)), TIMEOUT_MS,
        `every word typed into ${doc} on a fresh client of a surviving process`,
        () => words.filter((w) => !fresh.text.toString().includes(w)).slice(0, 5).join('|'))
      fresh.destroy()
    }
  }
  assert.deepEqual(refused.flat().filter((code) => code >= 4000), [], 'no writer was refused while reconnecting')
})

test('Redis restarted while clients type: new connections are refused (503, Retry-After, /healthz says why) then admitted, and nothing is lost', async (t) => {
  const { redis, servers: [a, b], connect } = await cluster(t, 2)
  const doc = uniqueDocId('redis-restart')
  const onA = connect(a, doc)
  const onB = connect(b, doc)
  await Promise.all([onA.synced(), onB.synced()])
  let typing = true
  const typed = []
  const loop = (async () => {
    for (let n = 0; typing; n++) {
      const writer = n % 2 ? onA : onB
      const word = `r${n} `
      writer.text.insert(writer.text.length, word)
      typed.push(word)
      await sleep(25)
    }
  })()
  await sleep(500)
  await redis.kill()

  // Refused while Redis is away, and /healthz says why.
  await waitFor(async () => (await fetch(`${a.httpUrl}/healthz`)).status === 503, TIMEOUT_MS, '/healthz to turn 503')
  const health = await (await fetch(`${a.httpUrl}/healthz`)).json()
  assert.equal(health.status, 'down')
  assert.match(health.reason, /redis/)
  const refused = await tryUpgrade(`${b.wsBase}/${doc}`)
  assert.equal(refused.status, 503)
  assert.ok(refused.headers['retry-after'], 'a 503 says when to come back')
  assert.equal(JSON.parse(refused.body).error.code, 'unavailable')
  await sleep(1500)

  await redis.start()
  await waitFor(async () => (await fetch(`${a.httpUrl}/healthz`)).status === 200 &&
    (await fetch(`${b.httpUrl}/healthz`)).status === 200, 20_000, 'both processes healthy again')
  await sleep(1000)
  typing = false
  await loop

  await waitFor(() => onA.provider.synced && onB.provider.synced && same([onA, onB]), 30_000, 'A and B to converge after the restart',
    () => `A ${onA.text.length} B ${onB.text.length}`)
  for (const server of [a, b]) {
    const fresh = connect(server, doc)
    await fresh.synced()
    await waitFor(() => typed.every((w) => fresh.text.toString().includes(w)), TIMEOUT_MS,
      'every word typed before, during and after the outage on a fresh client',
      () => typed.filter((w) => !fresh.text.toString().includes(w)).slice(0, 5).join('|'))
  }
})

test('share links across processes: a link made on A opens the document on B; removing it on A closes its sockets on B at once and B refuses it', async (t) => {
  const ownerKey = `owner-${Math.random().toString(36).slice(2)}`
  const secret = `secret-${Math.random().toString(36).slice(2)}`
  const { servers: [a, b], connect } = await cluster(t, 2, { ownerKey, secret })
  const owner = { authorization: `Bearer ${ownerKey}` }
  const created = await fetch(`${a.httpUrl}/api/docs`, { method: 'POST', headers: { ...owner, 'content-type': 'application/json' }, body: '{}' })
  assert.equal(created.status, 201)
  const { id: doc } = await created.json()
  const made = await fetch(`${a.httpUrl}/api/docs/${doc}/links`, {
    method: 'POST', headers: { ...owner, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'edit' })
  })
  assert.equal(made.status, 201)
  const link = await made.json()

  const guest = connect(b, doc, { token: link.token })
  await guest.synced()
  guest.text.insert(0, 'guest on B')
  const ownerOnA = connect(a, doc, { token: ownerKey })
  await waitFor(() => ownerOnA.text.toString() === 'guest on B', TIMEOUT_MS, 'the guest edit to reach A')

  const listed = await (await fetch(`${b.httpUrl}/api/docs/${doc}/links`, { headers: owner })).json()
  assert.deepEqual(listed.links.map((l) => l.id), [link.id], 'B lists the link made on A')

  const codes = closes(guest)
  const removed = await fetch(`${a.httpUrl}/api/docs/${doc}/links/${link.id}`, { method: 'DELETE', headers: owner })
  assert.equal(removed.status, 204)
  await waitFor(() => codes.includes(4403), TIMEOUT_MS, 'the guest on B to be closed with 4403', () => `${codes}`)
  guest.provider.disconnect()
  await sleep(1100) // what B held of the link is stale by now
  const again = await fetch(`${b.httpUrl}/api/docs/${doc}/content?format=text&token=${encodeURIComponent(link.token)}`)
  assert.equal(again.status, 401, 'B refuses the removed link')
})
