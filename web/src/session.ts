// One open document: the WASM replica, its copy on this device and its connection. The copy
// is loaded before the connection opens, so the document shows at once, server or not.
// Frames go from the socket into the replica and the replica's answers go back out; local
// changes go to the server and to the device; what changed is handed to the listeners the
// editor registers. Nothing here knows the protocol's bytes.
//
// With a view role, or once the server has ended the connection for good, the session is read
// only: no local change is kept or sent. When the server will never take this copy (deleted, or
// a stale copy) it is dropped from the device, unless it holds changes the server never had:
// then the editor offers them for download first and calls `forgetCopy`. A copy whose access
// was removed is never dropped.

import init, { QuireDoc, type Changes, type QuillOp } from "../../client-wasm/pkg/quire_client.js";
import { refusal, type Access } from "./access";
import { Connection, isEnding, type Ending } from "./connection";
import type { LocalStore, StorageError } from "./local";
import { LocalCopy } from "./local-copy";

/** How often presence is renewed and stale peers dropped (Yjs renews every 15 s and drops a
 * peer after 30 s of silence; ticking every 5 s keeps both on time). */
const TICK_MS = 5_000;
/** After the last local change, ask the server to confirm it has everything this soon. */
const CONFIRM_DELAY_MS = 500;

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
  // "Pending" is cleared only by proof: the server answers sync step 1s in order, after
  // everything sent before them, so an answer to a step 1 sent after the last change means
  // the server has that change. Counted per connection.
  /** Sync step 1s sent on this connection. */
  private asked = 0;
  /** Their answers (sync step 2s) received. */
  private answered = 0;
  /** The local changes are confirmed once `answered` reaches this (0: nothing to confirm). */
  private confirmAt = 0;
  private confirmTimer: number | undefined;
  /** Why the connection ended for good, if it did. */
  private endedBy: Ending | null = null;

  private constructor(
    readonly docId: string,
    readonly doc: QuireDoc,
    readonly local: LocalCopy,
    readonly access: Access,
    private readonly listeners: SessionListeners,
  ) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // The token as y-websocket passes any parameter (the owner's cookie goes by itself).
    const token = access.token ? `?token=${encodeURIComponent(access.token)}` : "";
    const url = `${scheme}//${location.host}/ws/${encodeURIComponent(docId)}${token}`;
    this.connection = new Connection(url, {
      opened: () => {
        // start() opens with a sync step 1: the first question of this connection.
        this.asked = 1;
        this.answered = 0;
        this.confirmAt = 0;
        return this.doc.start();
      },
      heartbeat: () => this.ask(),
      message: (frame) => this.receive(frame),
      closed: () => {
        this.isSynced = false;
        clearTimeout(this.confirmTimer);
        if (this.doc.disconnected()) this.listeners.presence();
      },
      // May be called from within `new Connection` (offline at once): use the argument.
      status: (status) => {
        if (isEnding(status)) this.endedBy = status;
        // Nothing the server lacks: nothing to offer, and the copy would list the document
        // forever. (A stale copy goes once the user opens the current document.)
        if (status === "deleted" && !this.local.pending) {
          this.local.forget().catch((error) => console.warn("quire: could not remove the deleted document's copy", error));
        }
        this.listeners.status();
      },
      refused: () => refusal(docId, access.token),
    });
    this.ticker = window.setInterval(() => this.handle(this.doc.tick()), TICK_MS);
  }

  /** Loads the module and the device's copy of `docId` (if `store`), then connects with
   * `access`'s credentials (being resolved meanwhile). */
  static async open(
    docId: string,
    store: LocalStore | StorageError,
    access: Promise<Access>,
    listeners: SessionListeners,
  ): Promise<Session> {
    await loadReplica();
    const doc = new QuireDoc();
    const local = await LocalCopy.open(store, docId, doc, (reason) => listeners.storageFailed(reason));
    return new Session(docId, doc, local, await access, listeners);
  }

  get synced(): boolean {
    return this.isSynced;
  }

  /** Why the connection ended for good, or null while it goes on. */
  get ended(): Ending | null {
    return this.endedBy;
  }

  /** Whether local changes are refused: a view role, a server that said this device may do
   * nothing with the document, or a connection that ended for good. */
  get readOnly(): boolean {
    const { role, answered } = this.access;
    return role === "view" || (answered && role === null) || this.endedBy !== null;
  }

  /** Drops the device's copy (the server will never take it). */
  forgetCopy(): Promise<void> {
    return this.local.forget();
  }

  /** A local change to the document (the message the replica produced, if any): kept on the
   * device and sent to the server. */
  commit(message: Uint8Array | undefined): void {
    // Read only: the editor lets no change through, and one that came anyway is neither kept
    // nor sent (the server would drop it).
    if (!message || this.readOnly) return;
    const wasPending = this.local.pending;
    this.local.committed(message);
    this.connection.send(message);
    // An answer to a question asked before this change proves nothing about it.
    this.confirmAt = 0;
    if (this.isSynced) this.confirmSoon();
    if (this.local.pending !== wasPending) this.listeners.status();
  }

  /** Sends a presence message (not kept: presence is about now). */
  send(message: Uint8Array): void {
    this.connection.send(message);
  }

  close(): void {
    clearInterval(this.ticker);
    clearTimeout(this.confirmTimer);
    this.connection.stop();
    void this.local.flush();
    this.local.rescue();
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

  /** A sync step 1 to send now, counted. */
  private ask(): Uint8Array {
    this.asked += 1;
    return this.doc.heartbeat();
  }

  /** Asks for a confirmation once typing pauses; the answer clears "pending". */
  private confirmSoon(): void {
    clearTimeout(this.confirmTimer);
    this.confirmTimer = window.setTimeout(() => {
      if (!this.isSynced) return;
      this.connection.ask(this.ask());
      this.confirmAt = this.asked;
    }, CONFIRM_DELAY_MS);
  }

  private handle(changes: Changes): void {
    for (const reply of changes.replies) this.connection.send(reply);
    this.answered += changes.syncAnswers;
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
      this.isSynced = true;
      this.local.synced();
      // Whatever the server lacked went out above, in our answer to its sync step 1; a
      // question asked now is answered after it.
      if (this.local.pending) this.confirmSoon();
      this.listeners.status();
    }
    if (this.confirmAt > 0 && this.answered >= this.confirmAt) {
      this.confirmAt = 0;
      this.local.confirmed();
      this.listeners.status();
    }
  }
}
