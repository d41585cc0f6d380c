// The app's entry: one page, two routes. `/` lists the documents; `/d/{doc}` edits one.
// Both use the device's store (IndexedDB); the service worker keeps the app itself for
// offline use.

import "quill/dist/quill.snow.css";
// quill-cursors' core build with its style sheet bundled here: its default build adds a
// <style> element at run time, which the content security policy (no inline styles) refuses.
import "quill-cursors/css";
import "./styles.css";
import { editorPage } from "./editor";
import { element } from "./dom";
import { listPage } from "./list";
import { LocalStore, StorageError } from "./local";

/** Document ids as the server accepts them (quire-model's `DocId`). */
const DOC_ID = /^[A-Za-z0-9._-]{1,128}$/;

async function route(root: HTMLElement): Promise<void> {
  const store = await LocalStore.open().catch((error: StorageError) => error);
  const path = location.pathname;
  if (path === "/") return listPage(root, store);
  const match = /^\/d\/([^/]+)$/.exec(path);
  const id = match && safeDecode(match[1]);
  if (id && DOC_ID.test(id)) return editorPage(root, id, store);
  root.replaceChildren(
    element("main", { class: "list-page" }, [
      element("h1", {}, ["No such page"]),
      element("p", {}, [element("a", { href: "/" }, ["See all documents"])]),
    ]),
  );
}

function safeDecode(component: string): string | null {
  try {
    return decodeURIComponent(component);
  } catch {
    return null;
  }
}

if ("serviceWorker" in navigator) {
  // Without it the app still works online; offline it would not load.
  navigator.serviceWorker.register("/sw.js").catch((error) => console.warn("quire: no offline app", error));
}

const root = document.getElementById("app")!;
route(root).catch((error) => {
  console.error(error);
  root.replaceChildren(
    element("main", { class: "list-page" }, [
      element("h1", {}, ["quire could not start"]),
      element("p", {}, [String(error?.message ?? error)]),
    ]),
  );
});
