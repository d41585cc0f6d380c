// One document's copy on this device: loads it into the replica before the connection opens,
// appends each local change as it is made, folds the log into one state from time to time,
// and keeps the document's "pending" mark. When the device cannot store (no IndexedDB, quota
// exceeded) it says so once and the document carries on in memory.

import type { QuireDoc } from "../../client-wasm/pkg/quire_client.js";
import { LocalStore, StorageError, type LocalDoc } from "./local";
import * as rescue from "./rescue";

/** Fold the log into one state after this many appended changes... */
const COMPACT_AFTER_APPENDS = 200;
/** ...and this long after a remote change (those are not appended; this is how they land). */
const COMPACT_DELAY_MS = 1_000;
/** How stale the "last changed" time in the documents list may be. */
const META_INTERVAL_MS = 5_000;

export class LocalCopy {
  /** The keys of the log entries this replica holds (loaded or written here): a compaction
   * replaces exactly these. Another tab's entries are not ours to remove. */
  private readonly owned = new Set<number>();
  /** Writes started and not finished (for `flush`). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private appended = 0;
  private timer: number | undefined;
  private failed: string | null = null;

  private constructor(
    private readonly store: LocalStore | null,
    private readonly doc: QuireDoc,
    private meta: LocalDoc,
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
    const store = device instanceof LocalStore ? device : null;
    let failure: string | null = device instanceof LocalStore ? null : device.message;
    let keys: number[] = [];
    let rescued: Uint8Array | null = null;
    let rescuedNew = false;
    if (store) {
      try {
        const log = await store.load(docId);
        for (const entry of log.entries) {
          if (entry.kind === "state") doc.applyState(entry.bytes);
          else doc.receive(entry.bytes);
        }
        keys = log.keys;
        meta = (await store.doc(docId)) ?? meta;
        rescued = rescue.take(docId);
        // What it adds to the log (usually nothing: the last page's writes landed after all).
        if (rescued) rescuedNew = doc.applyState(rescued).replies.length > 0;
      } catch (error) {
        // A copy that cannot be read is left as it is (not overwritten): the server has the
        // document, and the bytes stay for whoever looks into it.
        failure = error instanceof StorageError ? error.message : `the saved copy is unreadable (${error})`;
      }
    }
    const copy = new LocalCopy(failure ? null : store, doc, meta, onFailure);
    for (const key of keys) copy.owned.add(key);
    if (failure) copy.fail(failure);
    if (rescued && !failure) {
      // What the last page rescued beyond the log may hold changes the server has not
      // confirmed. (Marking every rescue would make every reopened document "not synced" until
      // the server answers, and a deleted one offer its copy for download.)
      if (rescuedNew) copy.saveMeta({ pending: true });
      copy.compact(() => rescue.drop(docId));
    }
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

  /** A local change, as the message the replica produced. Until `confirmed`, it is pending. */
  committed(message: Uint8Array): void {
    this.write((store) =>
      store.append({ doc: this.meta.id, kind: "message", bytes: message }).then((key) => this.owned.add(key)),
    );
    // The record is for the documents list: written when the mark appears, then at most
    // every few seconds while typing goes on.
    const now = Date.now();
    if (!this.meta.pending || now - this.meta.changedMs > META_INTERVAL_MS) {
      this.saveMeta({ pending: true, changedMs: now });
    }
    if (++this.appended >= COMPACT_AFTER_APPENDS) this.compactSoon(0);
  }

  /** Changes arrived from the server; they reach the device with the next compaction. */
  remoteChanged(): void {
    this.compactSoon(COMPACT_DELAY_MS);
  }

  /** The server has everything this copy has (a sync answered after the last change). */
  confirmed(): void {
    this.compactSoon(0);
    if (this.meta.pending) this.saveMeta({ pending: false });
  }

  titleChanged(title: string): void {
    if (title !== this.meta.title) this.saveMeta({ title });
  }

  /** The first sync of a page: the record says when, for the documents list. */
  synced(): void {
    this.saveMeta({ openedMs: Date.now() });
  }

  /** The server will never take this copy (the document was deleted, or the copy belongs to a
   * deleted document of the same id): it goes (kept, it would list the document forever), and
   * nothing is written for it after. Resolves once it is gone from the device; rejects with a
   * `StorageError` if it could not be removed. */
  async forget(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.meta = { ...this.meta, pending: false };
    const store = this.failed ? null : this.store;
    this.failed = "the document was deleted";
    // After every write started before (IndexedDB runs them in order).
    if (store) await store.forget(this.meta.id);
  }

  /** The page is going away: if writes are still in flight, the whole state also goes to
   * localStorage, synchronously (see `rescue`). */
  rescue(): void {
    if (this.store && !this.failed && this.inFlight.size > 0) rescue.keep(this.meta.id, this.doc.encodeState());
  }

  /** Folds the log into one state now (the page is going away) and waits for every write. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.compact();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Throttled, not debounced: while others type without a pause, their changes still reach
   * the device every `delay`. */
  private compactSoon(delay: number): void {
    if (delay > 0 && this.timer !== undefined) return;
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      this.timer = undefined;
      this.compact();
    }, delay);
  }

  /** `saved`: called once the state is in IndexedDB. */
  private compact(saved?: () => void): void {
    this.appended = 0;
    // The state holds everything applied so far; it replaces the entries known by now. An
    // append still in flight keeps its entry (a harmless duplicate, folded next time).
    const replaced = [...this.owned];
    const state = this.doc.encodeState();
    this.write((store) =>
      store.compact(this.meta.id, state, replaced).then((key) => {
        for (const old of replaced) this.owned.delete(old);
        this.owned.add(key);
        saved?.();
      }),
    );
  }

  private saveMeta(change: Partial<LocalDoc>): void {
    this.meta = { ...this.meta, ...change };
    const meta = this.meta;
    this.write((store) => store.saveDoc(meta));
  }

  /** Starts a write now; a failure turns the copy off (said once) and the document carries
   * on in memory. */
  private write(start: (store: LocalStore) => Promise<unknown>): void {
    const store = this.store;
    if (!store || this.failed) return;
    const running = start(store)
      .catch((error) => this.fail(String(error?.message ?? error)))
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = reason;
    this.onFailure(reason);
  }
}
