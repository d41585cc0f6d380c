// The device's copy of every document opened here, in IndexedDB, so that a document opens
// before (or without) the server and nothing typed is lost to a reload, a closed tab or a dead
// network.
//
// Per document, a log: each local change is appended as the message the replica produced for
// it (a y-sync update message, replayed into the replica with `receive`), and from time to
// time a state replaces the entries it contains (`encodeState`, replayed with `applyState`).
// Remote changes are not appended one by one (the server keeps them) but reach the device with
// the next compaction, which runs shortly after they arrive.
//
// Several tabs may hold one document. Entries get keys of their own (auto-increment), and a
// compaction removes only the entries its tab has in its replica (those it loaded or wrote),
// so one tab never drops another's offline edits; the next load merges whatever is there.
// Every write opens its transaction at once (no queue of our own): IndexedDB runs them in
// that order, and a write asked for just before the page goes away has started.
//
// Beside the log, a small record per document for the documents list: its title and whether
// it has changes the server may not have yet ("pending").

import { openDB, type DBSchema, type IDBPDatabase } from "idb";

/** One entry of a document's log. */
export interface Entry {
  doc: string;
  kind: "state" | "message";
  bytes: Uint8Array;
}

export interface LocalDoc {
  id: string;
  title: string;
  /** Local changes made while not synced with the server. */
  pending: boolean;
  /** When this device last changed it (ms since the epoch). */
  changedMs: number;
  /** When this device last synced it with the server (ms since the epoch; absent in records
   * written before it was kept): the documents list of someone who is not the owner is these
   * records, the documents opened here. */
  openedMs?: number;
}

interface Schema extends DBSchema {
  /** Auto-increment keys, so entries sort in the order they were written; indexed by doc. */
  log: { key: number; value: Entry; indexes: { doc: string } };
  docs: { key: string; value: LocalDoc };
}

const NAME = "quire";
const VERSION = 1;

/** Why the device cannot keep documents: no IndexedDB (private mode, disabled), or full. */
export class StorageError extends Error {}

export class LocalStore {
  private constructor(private readonly db: IDBPDatabase<Schema>) {}

  /** Opens the device's store; a `StorageError` if this browser cannot give us one. */
  static async open(): Promise<LocalStore> {
    if (typeof indexedDB === "undefined") throw new StorageError("this browser has no IndexedDB");
    try {
      const db = await openDB<Schema>(NAME, VERSION, {
        upgrade(db) {
          db.createObjectStore("log", { autoIncrement: true }).createIndex("doc", "doc");
          db.createObjectStore("docs", { keyPath: "id" });
        },
      });
      return new LocalStore(db);
    } catch (error) {
      throw new StorageError(reason(error));
    }
  }

  /** A document's log, oldest first, with each entry's key. */
  async load(docId: string): Promise<{ entries: Entry[]; keys: number[] }> {
    const index = this.db.transaction("log").store.index("doc");
    const [entries, keys] = await Promise.all([index.getAll(docId), index.getAllKeys(docId)]);
    return { entries, keys };
  }

  /** Appends an entry; resolves with its key. */
  append(entry: Entry): Promise<number> {
    return this.write(() => this.db.add("log", entry));
  }

  /** Replaces the entries `replaced` by one state, atomically (a crash leaves one or the
   * other); resolves with the state's key. */
  compact(docId: string, state: Uint8Array, replaced: number[]): Promise<number> {
    return this.write(async () => {
      const tx = this.db.transaction("log", "readwrite");
      const added = tx.store.add({ doc: docId, kind: "state", bytes: state });
      const removed = replaced.map((key) => tx.store.delete(key));
      const [key] = await Promise.all([added, ...removed, tx.done]);
      return key;
    });
  }

  /** Removes a document's log and record, atomically. */
  forget(docId: string): Promise<void> {
    return this.write(async () => {
      const tx = this.db.transaction(["log", "docs"], "readwrite");
      const log = tx.objectStore("log");
      for (const key of await log.index("doc").getAllKeys(docId)) void log.delete(key);
      void tx.objectStore("docs").delete(docId);
      await tx.done;
    });
  }

  async doc(docId: string): Promise<LocalDoc | undefined> {
    return this.db.get("docs", docId);
  }

  async saveDoc(doc: LocalDoc): Promise<void> {
    await this.write(() => this.db.put("docs", doc));
  }

  async docs(): Promise<LocalDoc[]> {
    return this.db.getAll("docs");
  }

  /** Starts a write (synchronously: its transaction opens now); whatever goes wrong (quota,
   * a closed database) becomes a `StorageError`. */
  private async write<T>(start: () => Promise<T>): Promise<T> {
    try {
      return await start();
    } catch (error) {
      throw new StorageError(reason(error));
    }
  }
}

function reason(error: unknown): string {
  if (error instanceof DOMException && error.name === "QuotaExceededError") {
    return "this device's storage for quire is full";
  }
  return error instanceof Error ? error.message : String(error);
}
