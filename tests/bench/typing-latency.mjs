// Keystroke-to-screen latency: Alice types in one browser context, Bob watches in another; for
// each keystroke, the time from Alice's keydown to the text-change that shows it in Bob's
// editor. Both pages run on this machine, so `performance.timeOrigin + performance.now()` is
// one clock for both.
//
//   node tests/bench/typing-latency.mjs [keystrokes=300] [ms between keys=50]
//   (cargo xtask bench typing builds the release server and the app first)
//
// QUIRE_BIN picks the server binary (default target/release/quire).

import path from 'node:path'

import { launchBrowser, newUser, openEditor, repoRoot, startQuire, TIMEOUT_MS, waitFor } from '../e2e/support.mjs'

const keystrokes = Number(process.argv[2] ?? 300)
const gapMs = Number(process.argv[3] ?? 50)
process.env.QUIRE_BIN ??= path.join(repoRoot, 'target', 'release', 'quire')

const server = await startQuire()
const browser = await launchBrowser()
try {
  const docId = `typing-${Date.now()}`
  const alice = await openEditor(await newUser(browser, 'Alice'), server, docId)
  const bob = await openEditor(await newUser(browser, 'Bob'), server, docId)
  // Each keystroke appends one character, so the body's length names the keystroke.
  await alice.evaluate(() => {
    window.sent = {}
    window.quire.quill.root.addEventListener('keydown', () => {
      window.sent[window.quire.quill.getLength() + 1] = performance.timeOrigin + performance.now()
    }, true)
  })
  await bob.evaluate(() => {
    window.shown = {}
    window.quire.quill.on('text-change', () => {
      window.shown[window.quire.quill.getLength()] = performance.timeOrigin + performance.now()
    })
  })
  await alice.click('.ql-editor')
  const letters = 'the quick brown fox jumps over the lazy dog '
  for (let i = 0; i < keystrokes; i++) {
    await alice.keyboard.press(letters[i % letters.length] === ' ' ? 'Space' : letters[i % letters.length])
    await new Promise((resolve) => setTimeout(resolve, gapMs))
  }
  await waitFor(() => bob.evaluate((n) => window.quire.quill.getLength() >= n + 1, keystrokes), TIMEOUT_MS,
    'Bob to see every keystroke')
  const sent = await alice.evaluate(() => window.sent)
  const shown = await bob.evaluate(() => window.shown)
  const latencies = Object.keys(sent)
    .filter((length) => shown[length] !== undefined)
    .map((length) => shown[length] - sent[length])
    .sort((a, b) => a - b)
  if (latencies.length !== keystrokes) {
    throw new Error(`measured ${latencies.length} of ${keystrokes} keystrokes`)
  }
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]
  console.log(`typing latency over ${keystrokes} keystrokes (one every ${gapMs} ms), keydown → shown in the other editor:`)
  console.log(`  p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${latencies.at(-1).toFixed(1)} ms`)
} finally {
  await browser.close()
  await server.stop()
}
