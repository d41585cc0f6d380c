// `/d/{doc}`: the editor page. Assembles the parts (access, replica and connection, Quill and the
// binding, title, presence, status, the Share dialog, the menu) and wires their events to each
// other.

import Quill from "quill";
import quillCursorsCore from "quill-cursors/core";
import { resolveAccess, takeLinkToken } from "./access";
import { Binding } from "./binding";
import { isEnding, type Ending } from "./connection";
import { element } from "./dom";
import { ENDED_STATUS, endedNotice } from "./ended";
import { deviceMarkdown } from "./markdown";
import { openHistory } from "./history";
import { fileMenu } from "./menu";
import { askUser, Presence } from "./presence";
import type { LocalStore, StorageError } from "./local";
import { Session } from "./session";
import { shareButton } from "./share";

// The core build (no <style> injected at run time: see main.ts) is a CommonJS module whose class
// is its `default`; bundled as ES module code, what its default import gives is that module.
const QuillCursors =
  (quillCursorsCore as unknown as { default?: typeof quillCursorsCore }).default ?? quillCursorsCore;
Quill.register("modules/cursors", QuillCursors);

/** The formats of quire's document model (see quire-model's schema); nothing else is kept. */
const FORMATS = ["header", "bold", "italic", "underline", "strike", "code", "link", "list", "blockquote", "code-block"];
const TOOLBAR = [
  [{ header: [1, 2, 3, false] }],
  ["bold", "italic", "underline", "strike", "code", "link"],
  [{ list: "ordered" }, { list: "bullet" }, "blockquote", "code-block"],
  ["clean"],
];

/** What the indicator says: the connection, and where the user's changes are. Whenever the
 * server is not confirming them, a user with unsynced changes reads that they are kept here
 * and not yet synced. */
function statusText(session: Session): string {
  const status = session.connection.status;
  if (isEnding(status)) return ENDED_STATUS[status];
  const where = session.local.failure ? "changes kept in this tab only" : "changes saved on this device";
  const kept = session.local.pending ? `: ${where}, not yet synced` : "";
  switch (status) {
    case "connected":
      if (!session.synced) return "Syncing…";
      return session.local.pending ? "Saving…" : "All changes synced";
    case "connecting":
      return session.local.pending ? `Connecting… ${where}, not yet synced` : "Connecting…";
    case "reconnecting":
      return session.local.pending ? `Reconnecting… ${where}, not yet synced` : "Reconnecting…";
    case "offline":
      return `Offline${kept}`;
    case "not-saving":
      return `The server cannot save changes right now${kept}`;
    case "too-large":
      return `This document has reached its size limit${kept}`;
  }
}

/** The lasting notice for a server that takes no changes for now (the status says it briefly). */
const SERVER_REFUSES = {
  "not-saving":
    "The server cannot save changes right now. Your changes are kept on this device and are sent as soon as it can take them.",
  "too-large":
    "This document has reached its size limit, so your latest changes cannot be added to it. They are kept on this " +
    "device and are sent if the document gets smaller.",
};

export async function editorPage(root: HTMLElement, docId: string, store: LocalStore | StorageError): Promise<void> {
  // First: a share link's token leaves the address bar before anything else can copy it.
  takeLinkToken(docId);
  // Asked while the module and the device's copy load.
  const access = resolveAccess(docId);
  const title = element("input", {
    class: "title",
    "aria-label": "Title",
    placeholder: "Untitled document",
    spellcheck: "false",
  });
  const status = element("div", { class: "status", role: "status" }, [
    element("span", { class: "dot" }),
    element("span", { class: "label" }),
  ]);
  const viewOnly = element("span", { class: "view-only", hidden: "" }, ["View only"]);
  const people = element("ul", { class: "people", "aria-label": "People here" });
  const ended = element("div", { class: "ended-slot" });
  const serverNotice = element("div", { class: "banner", role: "status", hidden: "" });
  const notice = element("div", { class: "notice", role: "alert", hidden: "" });
  const editor = element("div", { class: "editor" });
  const page = element("main", { class: "page" }, [editor]);
  const header = element("header", { class: "bar" }, [
    element("a", { class: "home", href: "/", title: "All documents" }, ["quire"]),
    title,
    viewOnly,
    status,
    people,
  ]);
  root.replaceChildren(header, ended, serverNotice, notice, page);

  const quill = new Quill(editor, {
    theme: "snow",
    formats: FORMATS,
    // Undo takes back this user's own changes only, never a collaborator's.
    modules: { toolbar: TOOLBAR, cursors: { hideDelayMs: 5000 }, history: { userOnly: true } },
    placeholder: "Start writing…",
    // Until the session says whether this user may edit (see showMode).
    readOnly: true,
  });

  // The session starts before the parts that listen to it exist (the binding below, before
  // any frame can arrive; presence once the user has a name). Its first events (a storage
  // failure, "offline") can come while it is still being opened.
  let binding: Binding | undefined;
  let presence: Presence | undefined;
  let titleComposing = false;
  let opened: Session | undefined;
  /** The ending already told (a connection ends once). */
  let endingShown: Ending | null = null;
  const session = (opened = await Session.open(docId, store, access, {
    content: (ops) => {
      binding?.remoteChange(ops);
      presence?.placeCarets();
    },
    title: () => showTitle(),
    presence: () => presence?.render(),
    status: () => showStatus(),
    storageFailed: (reason) => {
      showNotice(
        `This document cannot be saved on this device (${reason}). ` +
          "Your changes are kept in this tab and sent when connected: keep it open until they are synced.",
        false,
      );
      showStatus();
    },
  }));
  binding = new Binding(quill, session);
  const menu = fileMenu({
    docId,
    token: session.access.token,
    title: () => session.doc.title() ?? "",
    canEdit: () => !session.readOnly,
    // Editors see history; view-only links do not (the API refuses them), as in Google Docs.
    canSeeHistory: () => session.access.role !== "view",
    openHistory: () =>
      openHistory({
        docId,
        token: session.access.token,
        page,
        formats: FORMATS,
        notify: (message) => showNotice(message, true),
      }),
    notify: (message) => showNotice(message, true),
  });
  // Only the owner shares (and only a server that checks access has anything to share).
  if (session.access.role === "owner" && session.access.accessControl) {
    header.append(shareButton(docId, () => session.doc.title() ?? ""));
  }
  header.append(menu.element);

  function showTitle(): void {
    const value = session.doc.title() ?? "";
    document.title = `${value || "Untitled document"} — quire`;
    // Never rewrite the field under an open composition; its end sets the title anyway.
    if (titleComposing || title.value === value) return;
    const { selectionStart, selectionEnd } = title;
    title.value = value;
    if (document.activeElement === title) title.setSelectionRange(selectionStart, selectionEnd);
  }
  function showStatus(): void {
    if (!opened) return;
    const s = opened.connection.status;
    status.dataset.status = s;
    status.dataset.pending = String(opened.local.pending);
    status.querySelector(".label")!.textContent = statusText(opened);
    showMode(opened);
    if (s === "not-saving" || s === "too-large") {
      serverNotice.textContent = SERVER_REFUSES[s];
      serverNotice.hidden = false;
    } else if ((s === "connected" && !opened.local.pending) || isEnding(s)) {
      serverNotice.hidden = true;
    }
    if (isEnding(s) && endingShown === null) {
      endingShown = s;
      const said = endedNotice(opened, s);
      if (said) ended.replaceChildren(said);
    }
  }
  /** Editable or not: a view role, or a connection that ended for good. */
  function showMode(session: Session): void {
    const readOnly = session.readOnly;
    if (quill.isEnabled() === readOnly) quill.enable(!readOnly);
    title.readOnly = readOnly;
    page.classList.toggle("read-only", readOnly);
    viewOnly.hidden = session.access.role !== "view" || session.ended !== null;
  }
  function showNotice(message: string, fades: boolean): void {
    notice.textContent = message;
    notice.hidden = false;
    if (fades) setTimeout(() => (notice.hidden = true), 8000);
  }
  function setTitle(value: string): void {
    if (session.readOnly) return;
    session.commit(session.doc.setTitle(value));
    session.local.titleChanged(value);
  }

  title.addEventListener("compositionstart", () => (titleComposing = true));
  title.addEventListener("compositionend", () => {
    titleComposing = false;
    setTitle(title.value);
  });
  title.addEventListener("input", () => {
    if (!titleComposing) setTitle(title.value);
    document.title = `${title.value || "Untitled document"} — quire`;
  });
  title.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      quill.focus();
    }
  });
  showTitle();
  showStatus();
  window.addEventListener("pagehide", () => session.close());
  // Back/forward cache: the page comes back with its session closed; start afresh.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) location.reload();
  });
  // A tab in the background may be discarded without a pagehide: fold the log while we can.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") void session.local.flush();
  });
  // For the browser tests and the devtools console: the editor and the replica behind it, and
  // the device's copy as Markdown.
  Object.assign(window, { quire: { quill, session, store, markdown: () => deviceMarkdown(session.doc) } });

  const user = await askUser();
  presence = new Presence(session, quill, people, user);
  // As y-quill does: after any change (typing moves the caret without a selection-change).
  quill.on(Quill.events.EDITOR_CHANGE, () => presence?.selectionChanged(quill.getSelection()));
  presence.render();
  if (!session.readOnly) quill.focus();
}
