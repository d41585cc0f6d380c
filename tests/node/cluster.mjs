// Helpers for the cluster tests: a Redis of the test's own (it may restart it), a fresh database
// of the PostgreSQL that `cargo xtask test` starts (QUIRE_TEST_POSTGRES), quire processes on both,
// and HAProxy in front of them with deploy/haproxy.cfg. All real: Debian's redis-server,
// PostgreSQL and HAProxy; everything listens on 127.0.0.1 and is stopped when this process exits.

import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'

import { makeTempDir, startServer, waitFor, TIMEOUT_MS } from './support.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

const children = new Set()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

/** A port that was free a moment ago. */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function canConnect (port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

function track (child) {
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', () => { children.delete(child); resolve() }))
  return exited
}

/**
 * redis-server on a free port, writing every change to its append-only file before answering
 * (`appendfsync always`). `kill()` is a crash (SIGKILL); `start()` brings it back on the same
 * port and files.
 */
export async function startRedis () {
  const dir = await makeTempDir()
  const port = await freePort()
  let child = null
  let exited = null
  const redis = {
    url: `redis://127.0.0.1:${port}`,
    async start () {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' })
      exited = track(child)
      await waitFor(() => canConnect(port), TIMEOUT_MS, `redis-server on port ${port}`)
    },
    async kill () {
      child.kill('SIGKILL')
      await exited
    }
  }
  await redis.start()
  return redis
}

/** A fresh database of the test run's PostgreSQL; its URL. */
export function freshDatabase () {
  const admin = process.env.QUIRE_TEST_POSTGRES
  if (!admin) {
    throw new Error('the cluster tests need PostgreSQL: run them through `cargo xtask test` (it starts one), ' +
      'or set QUIRE_TEST_POSTGRES to a superuser URL such as postgres://postgres@127.0.0.1:5432/postgres')
  }
  const name = `quire_${randomBytes(6).toString('hex')}`
  const made = spawnSync('psql', [admin, '-q', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' })
  if (made.status !== 0) throw new Error(`cannot create a database: ${made.stderr}`)
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
}

/** `n` quire processes on one Redis and one database (options as startServer's). */
export async function startCluster (n, { redis, database, ...options }) {
  const servers = []
  for (let i = 0; i < n; i++) {
    servers.push(await startServer({ ...options, args: ['--redis', redis.url, '--database', database, ...(options.args ?? [])] }))
  }
  return servers
}

/** HAProxy with deploy/haproxy.cfg in front of `servers`, on a free port: `{ wsBase, httpUrl, stop }`. */
export async function startHaproxy (servers) {
  const port = await freePort()
  const lines = readFileSync(path.join(repoRoot, 'deploy', 'haproxy.cfg'), 'utf8').split('\n')
  const config = []
  let serversWritten = false
  for (const line of lines) {
    const trimmed = line.trim()
    if (trimmed.startsWith('bind ')) {
      config.push(`    bind 127.0.0.1:${port}`)
    } else if (trimmed.startsWith('server ')) {
      if (!serversWritten) {
        servers.forEach((server, i) => config.push(`    server quire${i + 1} ${new URL(server.httpUrl).host} check inter 500ms fall 1 rise 1`))
        serversWritten = true
      }
    } else {
      config.push(line)
    }
  }
  const dir = await makeTempDir()
  const file = path.join(dir, 'haproxy.cfg')
  writeFileSync(file, config.join('\n'))
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' })
  const exited = track(child)
  await waitFor(() => canConnect(port), TIMEOUT_MS, `haproxy on port ${port}`)
  return {
    httpUrl: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}/ws`,
    async stop () { child.kill('SIGKILL'); await exited }
  }
}
