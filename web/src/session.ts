// One open document: the WASM replica, its copy on this device and its connection. The copy
// is loaded before the connection opens, so the document shows at once, server or not.
// Frames go from the socket into the replica and the replica's answers go back out; local
// changes go to the server and to the device; what changed is handed to the listeners the
// editor registers. Nothing here knows the protocol's bytes.

import init, { QuireDoc, type Changes, type QuillOp } from "../../client-wasm/pkg/quire_client.js";
import { Connection } from "./connection";
import type { LocalStore, StorageError } from "./local";
import { LocalCopy } from "./local-copy";

/** How often presence is renewed and stale peers dropped (Yjs renews every 15 s and drops a
 * peer after 30 s of silence; ticking every 5 s keeps both on time). */
const TICK_MS = 5_000;

export interface SessionListeners {
  /** A remote change to the body, as Quill ops relative to the body before it. */
  content(ops: QuillOp[]): void;
  title(): void;
  presence(): void;
  /** The connection, the sync or the device copy changed state (see `Session`'s getters). */
  status(): void;
  /** The device cannot keep this document; it carries on in memory. */
  storageFailed(reason: string): void;
}

let module: Promise<unknown> | null = null;

/** Loads the WASM module once per page. */
export function loadReplica(): Promise<unknown> {
  module ??= init({ module_or_path: "/assets/quire_client_bg.wasm" });
  return module;
}

export class Session {
  readonly connection: Connection;
  private readonly ticker: number;
  /** Whether this connection's first sync has finished. */
  private isSynced = false;

  private constructor(
    readonly docId: string,
    readonly doc: QuireDoc,
    readonly local: LocalCopy,
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
      // May be called from within `new Connection` (offline at once): use the argument.
      status: (status) => {
        if (status === "deleted") this.local.forget();
        this.listeners.status();
      },
    });
    this.ticker = window.setInterval(() => this.handle(this.doc.tick()), TICK_MS);
  }

  /** Loads the module and the device's copy of `docId` (if `store`), then connects. */
  static async open(docId: string, store: LocalStore | StorageError, listeners: SessionListeners): Promise<Session> {
    await loadReplica();
    const doc = new QuireDoc();
    const local = await LocalCopy.open(store, docId, doc, (reason) => listeners.storageFailed(reason));
    return new Session(docId, doc, local, listeners);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** A local change to the document (the message the replica produced, if any): kept on the
   * device and sent to the server. */
  commit(message: Uint8Array | undefined): void {
    if (!message) return;
    const wasPending = this.local.pending;
    this.local.committed(message, this.isSynced);
    this.connection.send(message);
    if (this.local.pending !== wasPending) this.listeners.status();
  }

  /** Sends a presence message (not kept: presence is about now). */
  send(message: Uint8Array): void {
    this.connection.send(message);
  }

  close(): void {
    clearInterval(this.ticker);
    this.connection.stop();
    void this.local.flush();
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
    if (changes.contentChange) {
      this.local.remoteChanged();
      this.listeners.content(changes.contentChange);
    }
    if (changes.titleChanged) {
      this.local.remoteChanged();
      this.local.titleChanged(this.doc.title() ?? "");
      this.listeners.title();
    }
    if (changes.awarenessChanged) this.listeners.presence();
    if (changes.synced && !this.isSynced) {
      // Our answer to the server's sync step 1 (everything it lacked) went out above, before
      // its step 2 completed the sync: from here on it has all we have.
      this.isSynced = true;
      this.local.synced();
      this.listeners.status();
    }
  }
}
