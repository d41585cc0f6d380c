// The last moment of a page. IndexedDB writes still in flight when a page unloads can be
// dropped (a reload right after typing, in Chromium), and a page cannot wait for them. A
// localStorage write is synchronous: at pagehide the document's whole state goes there as
// well, and the next load takes it back into IndexedDB and removes it.

const PREFIX = "quire.rescue.";
/** localStorage holds about 5 MB per origin (as UTF-16 text); a bigger state is left to
 * IndexedDB alone rather than crowd out everything else. */
const MAX_CHARS = 1_500_000;
/** `String.fromCharCode(...chunk)` takes its bytes as arguments: keep each call small. */
const CHUNK = 0x8000;

export function keep(docId: string, state: Uint8Array): void {
  let text = "";
  for (let at = 0; at < state.length; at += CHUNK) {
    text += String.fromCharCode(...state.subarray(at, at + CHUNK));
  }
  const encoded = btoa(text);
  if (encoded.length > MAX_CHARS) return;
  try {
    localStorage.setItem(PREFIX + docId, encoded);
  } catch {
    // Full or disabled: IndexedDB has what it managed to write.
  }
}

/** The state kept for `docId`, if any (left in place until `drop`). */
export function take(docId: string): Uint8Array | null {
  try {
    const encoded = localStorage.getItem(PREFIX + docId);
    return encoded === null ? null : Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

export function drop(docId: string): void {
  try {
    localStorage.removeItem(PREFIX + docId);
  } catch {
    // Nothing to do: at worst the same state is merged again next time.
  }
}
