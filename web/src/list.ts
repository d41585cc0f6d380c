// `/`: the documents, newest change first, and "New document". Documents with changes this
// device has not synced yet are marked; without the server, the list shows the documents this
// device keeps.
//
// Only the owner lists and creates documents on the server. Anyone else (someone who opened
// share links) sees the documents opened on this device, and each opens with the link it was
// opened with (the editor finds the token kept for it).

import { createDoc, getSession, listDocs, type DocInfo } from "./api";
import { element } from "./dom";
import { LocalStore, type LocalDoc, type StorageError } from "./local";
import { absolute, fromNow } from "./time";

export async function listPage(root: HTMLElement, store: LocalStore | StorageError): Promise<void> {
  document.title = "Documents — quire";
  const heading = element("h1", {}, ["Documents"]);
  const create = element("button", { type: "button", class: "primary", "data-action": "new" }, ["New document"]);
  const list = element("ul", { class: "docs", "aria-label": "Documents" });
  const more = element("button", { type: "button", class: "more", hidden: "" }, ["Show more"]);
  const notice = element("div", { class: "notice", role: "alert", hidden: "" });
  root.replaceChildren(
    element("header", { class: "bar" }, [element("a", { class: "home", href: "/" }, ["quire"])]),
    notice,
    element("main", { class: "list-page" }, [element("div", { class: "list-head" }, [heading, create]), list, more]),
  );
  const say = (message: string) => {
    notice.textContent = message;
    notice.hidden = false;
  };
  const fail = (what: string, error: unknown) => say(`${what}: ${(error as Error).message}`);
  // The server sends a wrong sign-in key here (`/?key=…` → `/#signin=failed`).
  if (location.hash === "#signin=failed") {
    history.replaceState(history.state, "", location.pathname + location.search);
    say("That sign-in address is not valid: use the one quire printed when it started (`quire owner-url` prints it again).");
  }

  create.addEventListener("click", async () => {
    create.disabled = true;
    try {
      const doc = await createDoc();
      location.assign(`/d/${encodeURIComponent(doc.id)}`);
    } catch (error) {
      fail("Could not create a document", error);
      create.disabled = false;
    }
  });

  const local = new Map<string, LocalDoc>();
  if (store instanceof LocalStore) {
    for (const doc of await store.docs().catch(() => [])) local.set(doc.id, doc);
  }
  const shown = new Set<string>();
  const show = (docs: DocInfo[], empty: string) => {
    list.querySelector(".empty")?.remove();
    for (const doc of docs) {
      if (shown.has(doc.id)) continue;
      shown.add(doc.id);
      list.append(row(doc, local.get(doc.id)?.pending ?? false));
    }
    if (list.childElementCount === 0) list.append(element("li", { class: "empty" }, [empty]));
  };
  const onDevice = (keep: (doc: LocalDoc) => boolean) =>
    [...local.values()]
      .filter(keep)
      .map((doc) => ({ doc, at: Math.max(doc.changedMs, doc.openedMs ?? 0) }))
      .sort((a, b) => b.at - a.at)
      .map(({ doc, at }) => ({ id: doc.id, title: doc.title, created_ms: 0, updated_ms: at, size_bytes: 0 }));

  // Who is asking: without an answer (offline), the list is tried as the owner's, and falls
  // back to this device's documents.
  const me = await getSession(null, null).catch(() => null);
  if (me && !me.owner) {
    heading.textContent = "Documents opened on this device";
    create.remove();
    show(onDevice(() => true), "No documents yet. Open a link someone shared with you to see it here.");
    return;
  }

  const EMPTY = "No documents yet. Create one to start writing.";
  // What this device changed and has not synced comes first: it is the newest work.
  show(onDevice((doc) => doc.pending), EMPTY);
  let offset: number | null = 0;
  const load = async () => {
    if (offset === null) return;
    try {
      const page = await listDocs(offset);
      show(page.docs, EMPTY);
      offset = page.next_offset;
      more.hidden = offset === null;
    } catch (error) {
      fail("Could not reach the server; showing the documents on this device", error);
      show(onDevice(() => true), EMPTY);
    }
  };
  more.addEventListener("click", load);
  await load();
}

function row(doc: DocInfo, pending: boolean): HTMLElement {
  const updated = new Date(doc.updated_ms);
  const time = element("time", { datetime: updated.toISOString(), title: absolute.format(updated) }, [
    fromNow(doc.updated_ms),
  ]);
  return element("li", { class: "doc", "data-id": doc.id }, [
    element("a", { href: `/d/${encodeURIComponent(doc.id)}` }, [
      element("span", { class: "doc-title" }, [doc.title || "Untitled document"]),
      ...(pending ? [element("span", { class: "pending", title: "Changes on this device not yet synced" }, ["Not synced"])] : []),
      time,
    ]),
  ]);
}
