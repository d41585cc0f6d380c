// `/`: the documents, newest change first, and "New document". Documents with changes this
// device has not synced yet are marked; without the server, the list shows the documents this
// device keeps.

import { createDoc, listDocs, type DocInfo } from "./api";
import { element } from "./dom";
import { LocalStore, type LocalDoc, type StorageError } from "./local";

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export async function listPage(root: HTMLElement, store: LocalStore | StorageError): Promise<void> {
  document.title = "Documents — quire";
  const create = element("button", { type: "button", class: "primary", "data-action": "new" }, ["New document"]);
  const list = element("ul", { class: "docs", "aria-label": "Documents" });
  const more = element("button", { type: "button", class: "more", hidden: "" }, ["Show more"]);
  const notice = element("div", { class: "notice", role: "alert", hidden: "" });
  root.replaceChildren(
    element("header", { class: "bar" }, [element("a", { class: "home", href: "/" }, ["quire"])]),
    notice,
    element("main", { class: "list-page" }, [
      element("div", { class: "list-head" }, [element("h1", {}, ["Documents"]), create]),
      list,
      more,
    ]),
  );
  const fail = (what: string, error: unknown) => {
    notice.textContent = `${what}: ${(error as Error).message}`;
    notice.hidden = false;
  };

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
  const show = (docs: DocInfo[]) => {
    list.querySelector(".empty")?.remove();
    for (const doc of docs) {
      if (shown.has(doc.id)) continue;
      shown.add(doc.id);
      list.append(row(doc, local.get(doc.id)?.pending ?? false));
    }
    if (list.childElementCount === 0) {
      list.append(element("li", { class: "empty" }, ["No documents yet. Create one to start writing."]));
    }
  };
  // What this device changed and has not synced comes first: it is the newest work.
  show(
    [...local.values()]
      .filter((doc) => doc.pending)
      .sort((a, b) => b.changedMs - a.changedMs)
      .map((doc) => ({ id: doc.id, title: doc.title, created_ms: 0, updated_ms: doc.changedMs, size_bytes: 0 })),
  );

  let offset: number | null = 0;
  const load = async () => {
    if (offset === null) return;
    try {
      const page = await listDocs(offset);
      show(page.docs);
      offset = page.next_offset;
      more.hidden = offset === null;
    } catch (error) {
      fail("Could not reach the server; showing the documents on this device", error);
      show(
        [...local.values()]
          .sort((a, b) => b.changedMs - a.changedMs)
          .map((doc) => ({ id: doc.id, title: doc.title, created_ms: 0, updated_ms: doc.changedMs, size_bytes: 0 })),
      );
    }
  };
  more.addEventListener("click", load);
  await load();
}

function row(doc: DocInfo, pending: boolean): HTMLElement {
  const updated = new Date(doc.updated_ms);
  const time = element("time", { datetime: updated.toISOString(), title: absolute.format(updated) }, [
    ago(doc.updated_ms),
  ]);
  return element("li", { class: "doc", "data-id": doc.id }, [
    element("a", { href: `/d/${encodeURIComponent(doc.id)}` }, [
      element("span", { class: "doc-title" }, [doc.title || "Untitled document"]),
      ...(pending ? [element("span", { class: "pending", title: "Changes on this device not yet synced" }, ["Not synced"])] : []),
      time,
    ]),
  ]);
}

/** "5 minutes ago", "yesterday", … */
function ago(ms: number): string {
  const seconds = (ms - Date.now()) / 1000;
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ["year", 31_536_000],
    ["month", 2_592_000],
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}
