// Helpers for the Node interoperability tests: start one quire server, connect stock Yjs clients
// (yjs + y-websocket from npm, unchanged), and poll for conditions instead of sleeping.
//
// Environment:
//   QUIRE_BIN            the server binary (default: <repo>/target/debug/quire)
//   QUIRE_TEST_VERBOSE   if set, the server's stderr (its logs) is copied to this process's stderr
//   QUIRE_TEST_WS_BASE   only for checking the tests themselves against another y-websocket server
//                        (e.g. the reference one from @y/websocket-server: ws://127.0.0.1:PORT);
//                        the value is passed to WebsocketProvider as its serverUrl and no binary is started

import { spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { constants as osConstants, tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

// A debug build starts in well under a second; 30 s leaves room for a machine busy compiling.
const STARTUP_TIMEOUT_MS = 30_000
// Time the server gets to persist and exit after SIGTERM before it is killed.
const SHUTDOWN_GRACE_MS = 5_000
// How much of the server's stderr is kept to explain a failure.
const STDERR_TAIL_LINES = 200
// Poll interval of waitFor: short enough to keep the tests quick, long enough to let sockets work.
const POLL_MS = 20

/** The generous default for every wait: these tests check behaviour, not latency. */
export const TIMEOUT_MS = 10_000

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `predicate` until it returns a truthy value and returns that value; otherwise throws
 * an error naming what was expected and, if given, what was seen last (`describe()`).
 */
export async function waitFor (predicate, timeoutMs, what, describe) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() >= deadline) {
      const seen = describe ? `; last seen: ${describe()}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`)
    }
    await sleep(POLL_MS)
  }
}

/** A fresh document id that matches quire's rule `[A-Za-z0-9._-]{1,128}`. */
export function uniqueDocId (label) {
  return `interop-${label}-${randomBytes(4).toString('hex')}`
}

// Every server this process started, so that none outlives it, whatever way it ends, and the
// temporary stores that were not removed yet.
const running = new Set()
const tempDirs = new Set()
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  // A listener replaces Node's default "exit on signal", so exit explicitly: that runs the
  // 'exit' handler above.
  process.once(signal, () => process.exit(128 + osConstants.signals[signal]))
}

/**
 * Starts `quire serve` on a free port, or, with QUIRE_TEST_WS_BASE, uses an already running server.
 * Returns `{ wsBase, httpUrl, pid, stop, stderrTail }`, where `wsBase` is the serverUrl for
 * WebsocketProvider (`ws://127.0.0.1:PORT/ws`).
 *
 * `dataDir`: the store directory; by default a fresh temporary one that `stop()` removes. A given
 * one is left in place (to start another server on it). `addr`: where to listen (a fixed port,
 * to restart a server where its clients look for it). `args`: extra `quire serve` flags.
 * `ownerKey` (and `secret`): run with access control and this owner key (and token secret);
 * without it the server runs with `--auth none`, for the tests that are not about access.
 * `kill()` SIGKILLs the server (a crash) and leaves the store.
 */
export async function startServer ({ dataDir: givenDataDir, addr = '127.0.0.1:0', args = [], ownerKey, secret } = {}) {
  const external = process.env.QUIRE_TEST_WS_BASE
  if (external) {
    const wsBase = external.replace(/\/+$/, '')
    return { wsBase, httpUrl: null, external: true, pid: null, stop: async () => {}, stderrTail: () => '' }
  }

  const bin = process.env.QUIRE_BIN || path.join(repoRoot, 'target', 'debug', 'quire')
  if (!existsSync(bin)) {
    throw new Error(
      `quire binary not found at ${bin}: build it with \`cargo build -p quire --bin quire\` ` +
      'in the repository root, or set QUIRE_BIN to its path')
  }

  const dataDir = givenDataDir ?? await makeTempDir()
  const access = ownerKey
    ? ['--owner-key', ownerKey, ...(secret ? ['--secret', secret] : [])]
    : ['--auth', 'none']
  const child = spawn(bin, ['serve', '--addr', addr, '--data', dataDir, ...access, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Every quire flag has an env fallback (QUIRE_*): one left set in the developer's shell must
    // not change the server under test. RUST_LOG and the rest pass through.
    env: Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('QUIRE_')))
  })
  running.add(child)

  const stderrLines = []
  const stderrTail = () => stderrLines.join('\n')
  // Both pipes are drained for the whole run: a full pipe would block the server's logging.
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderrLines.push(line)
    if (stderrLines.length > STDERR_TAIL_LINES) stderrLines.shift()
    if (process.env.QUIRE_TEST_VERBOSE) process.stderr.write(`[quire] ${line}\n`)
  })
  const stdout = createInterface({ input: child.stdout })

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    running.delete(child)
    resolve({ code, signal })
  }))

  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    const diedEarly = child.exitCode !== null || child.signalCode !== null
    if (!diedEarly) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        process.stderr.write(`quire did not exit within ${SHUTDOWN_GRACE_MS} ms of SIGTERM; sending SIGKILL\n`)
        child.kill('SIGKILL')
      }, SHUTDOWN_GRACE_MS)
      await exited
      clearTimeout(timer)
    }
    if (!givenDataDir) await removeTempDir(dataDir)
    if (diedEarly) {
      throw new Error(`quire exited by itself during the tests (code ${child.exitCode}, ` +
        `signal ${child.signalCode}); stderr:\n${stderrTail()}`)
    }
  }

  try {
    const httpUrl = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `quire printed no "quire listening on http://..." line within ${STARTUP_TIMEOUT_MS} ms; ` +
        `stderr:\n${stderrTail()}`)), STARTUP_TIMEOUT_MS)
      stdout.on('line', (line) => {
        const match = /^quire listening on (http:\/\/\S+?)\/?$/.exec(line.trim())
        if (match) {
          clearTimeout(timer)
          resolve(match[1])
        }
      })
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(new Error(`could not start ${bin}: ${err.message}`))
      })
      exited.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(new Error(`quire exited before listening (code ${code}, signal ${signal}); stderr:\n${stderrTail()}`))
      })
    })
    const wsBase = httpUrl.replace(/^http/, 'ws') + '/ws'
    // SIGKILL, as a crash: nothing is flushed or closed; the store is left for a restart.
    const kill = async () => {
      stopped = true
      child.kill('SIGKILL')
      await exited
    }
    return { wsBase, httpUrl, ownerKey, external: false, pid: child.pid, stop, kill, stderrTail }
  } catch (err) {
    // The startup error already says why; a second "exited by itself" would only repeat it.
    await stop().catch(() => {})
    throw err
  }
}

/** A fresh temporary directory for a store; removed on exit at the latest. */
export async function makeTempDir () {
  const dir = await mkdtemp(path.join(tmpdir(), 'quire-node-test-'))
  tempDirs.add(dir)
  return dir
}

export async function removeTempDir (dir) {
  await rm(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

/**
 * A stock client: its own Y.Doc and an unchanged WebsocketProvider. `disableBc` is essential:
 * Node 20 has a global BroadcastChannel, and two providers of one room in one process would
 * otherwise sync through it and bypass the server under test.
 */
export function connectClient (wsBase, docId, { connect = true, token } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(wsBase, docId, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    connect,
    // As y-websocket passes any parameter: `?token=` on the socket's URL.
    params: token ? { token } : {}
  })
  let destroyed = false
  const client = {
    doc,
    provider,
    awareness: provider.awareness,
    text: doc.getText('content'),
    meta: doc.getMap('meta'),
    /** Waits for the provider's `synced` (it has received the server's sync step 2). */
    synced: (what = `${docId}: client ${doc.clientID} synced`) =>
      waitFor(() => provider.synced, TIMEOUT_MS, what, () => `wsconnected=${provider.wsconnected}`),
    destroy: () => {
      if (destroyed) return
      destroyed = true
      provider.destroy()
      doc.destroy()
    }
  }
  return client
}

/**
 * Drops the client's socket without a close frame and without the awareness "I am leaving"
 * message that `provider.disconnect()` sends, so that only the server can tell the others.
 */
export function dropAbruptly (client) {
  client.provider.shouldConnect = false
  const ws = client.provider.ws
  if (ws === null) throw new Error('dropAbruptly: the client is not connected')
  ws.terminate()
}

/**
 * Opens a raw WebSocket and reports how the handshake ended: `{ status: 101 }` when it opened
 * (the socket is closed again), `{ status, headers, body }` of the HTTP response when the upgrade
 * was refused.
 */
export function tryUpgrade (url, timeoutMs = TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`no handshake answer from ${url} within ${timeoutMs} ms`))
    }, timeoutMs)
    ws.on('open', () => {
      clearTimeout(timer)
      ws.close()
      resolve({ status: 101 })
    })
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer)
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('end', () => {
        req.destroy()
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() })
      })
    })
    ws.on('error', (err) => {
      clearTimeout(timer)
      // After 'unexpected-response' the destroyed request may still report an error: already settled.
      reject(new Error(`WebSocket to ${url} failed: ${err.message}`))
    })
  })
}

export { Y }
