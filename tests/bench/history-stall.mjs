// Does taking a version pause the document? A 5 MB document, Ada typing a keystroke every 20 ms
// (stock yjs + y-websocket), Bob receiving them: the delivery latency of each keystroke, first
// with no version being taken, then while named versions of the whole 5 MB state are taken back
// to back through the API.
//
//   node tests/bench/history-stall.mjs [seconds per phase=10] [MB=5]
//
// QUIRE_BIN picks the server binary (default target/release/quire).

import path from 'node:path'

import { connectClient, startServer, TIMEOUT_MS, waitFor } from '../node/support.mjs'

const repoRoot = path.resolve(import.meta.dirname, '..', '..')

const seconds = Number(process.argv[2] ?? 10)
const megabytes = Number(process.argv[3] ?? 5)
process.env.QUIRE_BIN ??= path.join(repoRoot, 'target', 'release', 'quire')

/** Prose-like text: words drawn from a vocabulary by a fixed generator (so it compresses as text
 * does, not as one repeated sentence). */
function prose (bytes) {
  const words = ('plan budget risk market hire ship quarter revenue cost team customer product launch review ' +
    'design test release support growth margin forecast partner contract schedule').split(' ')
  // xorshift32: no short cycles in the low bits (an LCG modulo 2^31 repeats there).
  let seed = 42
  const next = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return seed >>> 0
  }
  const parts = []
  let size = 0
  while (size < bytes) {
    const sentence = Array.from({ length: 12 + (next() % 20) }, () => words[next() % words.length]).join(' ')
    const paragraph = `${sentence[0].toUpperCase()}${sentence.slice(1)}.${next() % 4 === 0 ? '\n\n' : ' '}`
    parts.push(paragraph)
    size += paragraph.length
  }
  return parts.join('')
}

function percentiles (samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
  return `n=${sorted.length} p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`
}

// The default outbox (4 MiB) drops a client whose first sync of a 5 MB document meets any other
// frame in its queue (seen: "dropping a client that cannot keep up", then again on every
// reconnect); room for the whole state.
const server = await startServer({ args: ['--outbox-bytes', String(4 * megabytes << 20)] })
try {
  const docId = `stall-${Date.now()}`
  const content = prose(megabytes * 1024 * 1024)
  const created = await fetch(`${server.httpUrl}/api/docs`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: docId, content, format: 'text' })
  })
  if (!created.ok) throw new Error(`create: ${created.status} ${await created.text()}`)
  const ada = connectClient(server.wsBase, docId)
  const bob = connectClient(server.wsBase, docId)
  await waitFor(() => ada.provider.synced && bob.provider.synced, 60_000, 'both clients synced')
  console.log(`document: ${(content.length / 1e6).toFixed(1)} million characters`)

  const sent = new Map()
  let samples = []
  bob.text.observe((event) => {
    const now = performance.now()
    for (const op of event.delta) {
      if (typeof op.insert !== 'string') continue
      for (const match of op.insert.matchAll(/<k(\d+)>/g)) {
        const at = sent.get(Number(match[1]))
        if (at !== undefined) samples.push(now - at)
      }
    }
  })
  let k = 0
  const type = () => {
    k++
    sent.set(k, performance.now())
    ada.text.insert(ada.text.length, `<k${k}>`)
  }

  async function phase (what, during) {
    samples = []
    const first = k
    const timer = setInterval(type, 20)
    const end = Date.now() + seconds * 1000
    const extra = await during(end)
    clearInterval(timer)
    await waitFor(() => samples.length >= k - first, TIMEOUT_MS, 'every keystroke delivered', () => `${samples.length} of ${k - first}`)
    console.log(`${what.padEnd(28)} ${percentiles(samples)}${extra ?? ''}`)
  }

  await phase('no versions', (end) => new Promise((resolve) => setTimeout(resolve, end - Date.now())))
  const versions = (gapMs) => async (end) => {
    const times = []
    let n = 0
    while (Date.now() < end) {
      await new Promise((resolve) => setTimeout(resolve, gapMs))
      const start = performance.now()
      const reply = await fetch(`${server.httpUrl}/api/docs/${docId}/versions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `v${n++}` })
      })
      if (reply.status !== 201) throw new Error(`version: ${reply.status} ${await reply.text()}`)
      const { size_bytes: size } = await reply.json()
      times.push(performance.now() - start)
      if (n === 1) console.log(`a version of the 5 MB state takes ${(size / 1e6).toFixed(2)} MB in the store`)
    }
    times.sort((a, b) => a - b)
    return ` (${times.length} versions, each ${times[Math.floor(times.length / 2)].toFixed(0)} ms median)`
  }
  await phase('a version every second', versions(1000))
  await phase('versions back to back', versions(0))
  ada.destroy()
  bob.destroy()
} finally {
  await server.stop()
}
