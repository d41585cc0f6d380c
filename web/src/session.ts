// One open document: the WASM replica and its connection. Frames go from the socket into the
// replica and the replica's answers go back out; what changed is handed to the listeners the
// editor registers. Nothing here knows the protocol's bytes.

import init, { QuireDoc, type Changes, type QuillOp } from "../../client-wasm/pkg/quire_client.js";
import { Connection, type Status } from "./connection";

/** How often presence is renewed and stale peers dropped (Yjs renews every 15 s and drops a
 * peer after 30 s of silence; ticking every 5 s keeps both on time). */
const TICK_MS = 5_000;

export interface SessionListeners {
  /** A remote change to the body, as Quill ops relative to the body before it. */
  content(ops: QuillOp[]): void;
  title(): void;
  presence(): void;
  status(status: Status): void;
  /** The first sync of a connection finished: the replica holds everything the server has. */
  synced(): void;
}

let module: Promise<unknown> | null = null;

/** Loads the WASM module once per page. */
export function loadReplica(): Promise<unknown> {
  module ??= init({ module_or_path: "/assets/quire_client_bg.wasm" });
  return module;
}

export class Session {
  readonly doc = new QuireDoc();
  readonly connection: Connection;
  private readonly ticker: number;
  /** Whether this connection's first sync has finished. */
  private isSynced = false;

  constructor(
    readonly docId: string,
    private readonly listeners: SessionListeners,
  ) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/${encodeURIComponent(docId)}`;
    this.connection = new Connection(url, {
      opened: () => this.doc.start(),
      message: (frame) => this.receive(frame),
      closed: () => {
        this.isSynced = false;
        if (this.doc.disconnected()) this.listeners.presence();
      },
      status: (status) => this.listeners.status(status),
    });
    this.ticker = window.setInterval(() => this.handle(this.doc.tick()), TICK_MS);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Sends a message the replica produced for a local change, if there is one. */
  send(message: Uint8Array | undefined): void {
    if (message) this.connection.send(message);
  }

  close(): void {
    clearInterval(this.ticker);
    this.connection.stop();
    this.doc.free();
  }

  private receive(frame: Uint8Array): void {
    let changes: Changes;
    try {
      changes = this.doc.receive(frame);
    } catch (error) {
      // The replica refused the frame and changed nothing; a fresh connection resyncs.
      console.error("quire: refused a frame from the server", error);
      this.connection.reconnect();
      return;
    }
    this.handle(changes);
  }

  private handle(changes: Changes): void {
    for (const reply of changes.replies) this.connection.send(reply);
    if (changes.contentChange) this.listeners.content(changes.contentChange);
    if (changes.titleChanged) this.listeners.title();
    if (changes.awarenessChanged) this.listeners.presence();
    if (changes.synced && !this.isSynced) {
      this.isSynced = true;
      this.listeners.synced();
    }
  }
}
