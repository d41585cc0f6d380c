// The device's copy of every document opened here, in IndexedDB, so that a document opens
// before (or without) the server and nothing typed is lost to a reload, a closed tab or a dead
// network.
//
// Per document, a log: each local change is appended as the message the replica produced for
// it (a y-sync update message, replayed into the replica with `receive`), and from time to
// time the whole state replaces the log (`encodeState`, replayed with `applyState`). Remote
// changes are not appended one by one (the server keeps them) but reach the device with the
// next compaction, which runs shortly after they arrive.
//
// Beside the log, a small record per document for the documents list: its title and whether
// it has changes the server may not have yet ("pending").

import { openDB, type DBSchema, type IDBPDatabase } from "idb";

/** One entry of a document's log. */
export type Entry = { kind: "state"; bytes: Uint8Array } | { kind: "message"; bytes: Uint8Array };

export interface LocalDoc {
  id: string;
  title: string;
  /** Local changes made while not synced with the server. */
  pending: boolean;
  /** When this device last changed it (ms since the epoch). */
  changedMs: number;
}

interface Schema extends DBSchema {
  /** Keyed `[docId, seq]`: a range scan reads one document's log in order. */
  log: { key: [string, number]; value: Entry };
  docs: { key: string; value: LocalDoc };
}

const NAME = "quire";
const VERSION = 1;
/** Sequence numbers start here after a compaction; the state itself sits at 0. */
const FIRST_SEQ = 1;

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
          db.createObjectStore("log");
          db.createObjectStore("docs", { keyPath: "id" });
        },
      });
      return new LocalStore(db);
    } catch (error) {
      throw new StorageError(reason(error));
    }
  }

  /** A document's log, oldest first, and the next free sequence number. */
  async load(docId: string): Promise<{ entries: Entry[]; next: number }> {
    const range = IDBKeyRange.bound([docId, 0], [docId, Infinity]);
    const tx = this.db.transaction("log");
    const [entries, keys] = await Promise.all([tx.store.getAll(range), tx.store.getAllKeys(range)]);
    const last = keys.at(-1)?.[1] ?? 0;
    return { entries, next: Math.max(FIRST_SEQ, last + 1) };
  }

  async append(docId: string, seq: number, entry: Entry): Promise<void> {
    await this.write(async () => {
      await this.db.put("log", entry, [docId, seq]);
    });
  }

  /** Replaces a document's log with one state, atomically: a crash leaves one or the other. */
  async compact(docId: string, state: Uint8Array): Promise<void> {
    await this.write(async () => {
      const tx = this.db.transaction("log", "readwrite");
      await tx.store.delete(IDBKeyRange.bound([docId, 0], [docId, Infinity]));
      await tx.store.put({ kind: "state", bytes: state }, [docId, 0]);
      await tx.done;
    });
  }

  /** Removes a document's log and record, atomically. */
  async forget(docId: string): Promise<void> {
    await this.write(async () => {
      const tx = this.db.transaction(["log", "docs"], "readwrite");
      await tx.objectStore("log").delete(IDBKeyRange.bound([docId, 0], [docId, Infinity]));
      await tx.objectStore("docs").delete(docId);
      await tx.done;
    });
  }

  async doc(docId: string): Promise<LocalDoc | undefined> {
    return this.db.get("docs", docId);
  }

  async saveDoc(doc: LocalDoc): Promise<void> {
    await this.write(async () => {
      await this.db.put("docs", doc);
    });
  }

  async docs(): Promise<LocalDoc[]> {
    return this.db.getAll("docs");
  }

  /** Runs a write; whatever goes wrong (quota, a closed database) becomes a `StorageError`. */
  private async write(run: () => Promise<void>): Promise<void> {
    try {
      await run();
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
