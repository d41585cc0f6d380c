// One document's copy on this device: loads it into the replica before the connection opens,
// appends each local change as it is made, folds the log into one state from time to time,
// and keeps the document's "pending" mark. When the device cannot store (no IndexedDB, quota
// exceeded) it says so once and the document carries on in memory.

import type { QuireDoc } from "../../client-wasm/pkg/quire_client.js";
import { LocalStore, StorageError, type LocalDoc } from "./local";

/** Fold the log into one state after this many appended changes... */
const COMPACT_AFTER_APPENDS = 200;
/** ...and this long after a remote change (those are not appended; this is how they land). */
const COMPACT_DELAY_MS = 1_000;

export class LocalCopy {
  /** Writes run one after another, in the order they were asked for. */
  private queue: Promise<void> = Promise.resolve();
  private appended = 0;
  private timer: number | undefined;
  private failed: string | null = null;

  private constructor(
    private readonly store: LocalStore | null,
    private readonly doc: QuireDoc,
    private meta: LocalDoc,
    private next: number,
    private readonly onFailure: (reason: string) => void,
  ) {}

  /**
   * Loads the device's copy of `docId` into `doc`. Without a store (the device cannot keep
   * documents: the error says why) the copy only lives in memory.
   */
  static async open(
    device: LocalStore | StorageError,
    docId: string,
    doc: QuireDoc,
    onFailure: (reason: string) => void,
  ): Promise<LocalCopy> {
    let meta: LocalDoc = { id: docId, title: "", pending: false, changedMs: 0 };
    let next = 0;
    const store = device instanceof LocalStore ? device : null;
    let failure: string | null = device instanceof LocalStore ? null : device.message;
    if (store) {
      try {
        const log = await store.load(docId);
        for (const entry of log.entries) {
          if (entry.kind === "state") doc.applyState(entry.bytes);
          else doc.receive(entry.bytes);
        }
        next = log.next;
        meta = (await store.doc(docId)) ?? meta;
      } catch (error) {
        // A copy that cannot be read is left as it is (not overwritten): the server has the
        // document, and the bytes stay for whoever looks into it.
        failure = error instanceof StorageError ? error.message : `the saved copy is unreadable (${error})`;
      }
    }
    const copy = new LocalCopy(failure ? null : store, doc, meta, next, onFailure);
    if (failure) copy.fail(failure);
    return copy;
  }

  /** Whether there are local changes the server may not have yet. */
  get pending(): boolean {
    return this.meta.pending;
  }

  /** Why changes are kept in memory only, or null if they are saved on the device. */
  get failure(): string | null {
    return this.failed;
  }

  /** A local change, as the message the replica produced; `synced`: it goes to the server now. */
  committed(message: Uint8Array, synced: boolean): void {
    const seq = this.next++;
    this.run((store) => store.append(this.meta.id, seq, { kind: "message", bytes: message }));
    this.meta = { ...this.meta, pending: this.meta.pending || !synced, changedMs: Date.now() };
    this.saveMeta();
    if (++this.appended >= COMPACT_AFTER_APPENDS) this.compactSoon(0);
  }

  /** Changes arrived from the server; they reach the device with the next compaction. */
  remoteChanged(): void {
    this.compactSoon(COMPACT_DELAY_MS);
  }

  /** The connection's sync finished: the server has everything this copy has. */
  synced(): void {
    this.compactSoon(0);
    if (!this.meta.pending) return;
    this.meta = { ...this.meta, pending: false };
    this.saveMeta();
  }

  titleChanged(title: string): void {
    if (title === this.meta.title) return;
    this.meta = { ...this.meta, title };
    this.saveMeta();
  }

  /** The document was deleted on the server: this device's copy goes too (kept, it would
   * list the document forever; the server refuses to take it back anyway). */
  forget(): void {
    clearTimeout(this.timer);
    this.run((store) => store.forget(this.meta.id));
    this.meta = { ...this.meta, pending: false };
    this.failed = "the document was deleted";
  }

  /** Folds the log into one state now (the page is going away) and waits for the writes. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.compact();
    return this.queue;
  }

  private compactSoon(delay: number): void {
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.compact(), delay);
  }

  private compact(): void {
    this.appended = 0;
    // The state is taken when the compaction runs, after every append queued before it.
    this.run((store) => store.compact(this.meta.id, this.doc.encodeState()));
  }

  private saveMeta(): void {
    const meta = this.meta;
    this.run((store) => store.saveDoc(meta));
  }

  private run(write: (store: LocalStore) => Promise<void>): void {
    const store = this.store;
    if (!store || this.failed) return;
    this.queue = this.queue.then(() => write(store)).catch((error) => this.fail(String(error?.message ?? error)));
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = reason;
    this.onFailure(reason);
  }
}
