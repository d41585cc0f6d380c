// File → Version history: a side panel listing the document's versions by day, newest first,
// each with its time, its name and the coloured names of the people who edited since the version
// before; selecting one shows it read-only in place of the live editor, with the changes since
// the previous version coloured by author (insertions underlined, deletions struck through, as
// Google Docs' "Show changes"); "Restore this version" and "Name this version". Closing the panel
// returns to live editing.
//
// A document of a year may have a thousand versions and a hundred pages: the list is fetched a
// page at a time as it scrolls (the API's pages, 100 versions each), and a comparison only when
// a version is selected, so opening the panel costs one small request whatever the history.

import Quill from "quill";
import {
  compareVersion,
  listVersions,
  nameCurrentVersion,
  renameVersion,
  restoreVersion,
  type Author,
  type SpanInfo,
  type VersionInfo,
} from "./api";
import { element } from "./dom";
import { safeColor, savedUser } from "./presence";
import { absolute } from "./time";

/** Versions per request: a panel's first screens, and a request of ~30 KB. */
const PAGE = 100;
/** Colour of what nobody can be named for (imported, unknown). */
const NOBODY = "#5f6368";

export interface HistoryContext {
  docId: string;
  /** The share link's token, or null (the owner's session). */
  token: string | null;
  /** Where the live editor is; hidden while a version is shown. */
  page: HTMLElement;
  /** The formats the editor knows (the preview adds colours for the changes). */
  formats: string[];
  notify(message: string): void;
}

const dayLabel = new Intl.DateTimeFormat(undefined, { dateStyle: "full" });
const timeLabel = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

/** "Today", "Yesterday", or the date. */
function day(ms: number): string {
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  if (ms >= start.getTime()) return "Today";
  if (ms >= start.getTime() - 86_400_000) return "Yesterday";
  return dayLabel.format(ms);
}

/** An author as the panel names and colours them. */
export function describe(author: Author): { label: string; color: string } {
  switch (author.kind) {
    case "person":
      return { label: author.name, color: safeColor(author.color) };
    case "restored":
      return author.by
        ? { label: `${author.by.name} (restore)`, color: safeColor(author.by.color) }
        : { label: "Restored", color: NOBODY };
    case "imported":
      return { label: "Imported", color: NOBODY };
    case "unknown":
      return { label: "Unknown", color: NOBODY };
  }
}

function editorChip(author: Author): HTMLElement {
  const { label, color } = describe(author);
  const chip = element("li", { class: "version-editor" }, [element("span", { class: "swatch" }), label]);
  chip.style.setProperty("--person-color", color);
  return chip;
}

/** How a version is titled in the list: its name, or what made it. */
function versionTitle(version: VersionInfo): string {
  if (version.name) return version.name;
  if (version.kind === "restore") return "Restored version";
  return "";
}

/** The comparison as one read-only document: kept text as it is, each change in its author's
 * colour, insertions underlined and deletions struck through. */
export function previewOps(spans: SpanInfo[]): { insert: unknown; attributes?: Record<string, unknown> }[] {
  return spans.map((span) => {
    const attributes: Record<string, unknown> = { ...(span.attributes ?? {}) };
    if (span.change !== "kept") {
      const color = span.author ? describe(span.author).color : NOBODY;
      attributes.color = color;
      if (span.change === "inserted") attributes.underline = true;
      if (span.change === "deleted") attributes.strike = true;
      if (span.change === "formatted") attributes.background = "#fef7e0";
    }
    return Object.keys(attributes).length ? { insert: span.insert, attributes } : { insert: span.insert };
  });
}

/** Opens the panel (at most one: a second call closes the first). */
export function openHistory(context: HistoryContext): void {
  document.querySelector<HTMLElement & { close?: () => void }>(".history")?.close?.();
  const { docId, token, notify } = context;

  const list = element("ol", { class: "history-list", "aria-label": "Versions" });
  const more = element("li", { class: "history-more" }, ["Loading…"]);
  list.append(more);
  const nameCurrent = element("button", { type: "button", class: "history-name-current" }, ["Name current version"]);
  const closeButton = element("button", { type: "button", class: "history-close", "aria-label": "Close version history" }, [
    "×",
  ]);
  const panel = element("aside", { class: "history", "aria-label": "Version history" }, [
    element("div", { class: "history-head" }, [element("h2", {}, ["Version history"]), closeButton]),
    nameCurrent,
    list,
  ]) as HTMLElement & { close?: () => void };

  // The selected version, shown read-only where the editor was.
  const previewTitle = element("span", { class: "preview-title" });
  const restore = element("button", { type: "button", class: "preview-restore" }, ["Restore this version"]);
  const rename = element("button", { type: "button", class: "preview-name" }, ["Name this version"]);
  const previewEditor = element("div", { class: "preview-editor" });
  const preview = element("section", { class: "history-preview", hidden: "" }, [
    element("div", { class: "preview-bar" }, [previewTitle, rename, restore]),
    previewEditor,
  ]);
  const quill = new Quill(previewEditor, {
    theme: "snow",
    readOnly: true,
    formats: [...context.formats, "color", "background"],
    modules: { toolbar: false },
  });
  context.page.after(preview);
  document.body.append(panel);
  document.body.classList.add("history-open");

  let offset: number | null = 0;
  let loading = false;
  let lastDay = "";
  let selected: { version: VersionInfo; button: HTMLElement } | null = null;

  async function loadMore(): Promise<void> {
    if (loading || offset === null) return;
    loading = true;
    try {
      const page = await listVersions(docId, offset, PAGE, token);
      for (const version of page.versions) {
        const label = day(version.created_ms);
        if (label !== lastDay) {
          lastDay = label;
          more.before(element("li", { class: "history-day" }, [element("h3", {}, [label])]));
        }
        more.before(element("li", {}, [versionButton(version)]));
      }
      offset = page.next_offset;
      if (offset === null) more.textContent = page.total === 0 ? "No versions yet." : "";
    } catch (error) {
      more.textContent = `Could not load the versions: ${(error as Error).message}`;
      offset = null;
    } finally {
      loading = false;
    }
  }

  function versionButton(version: VersionInfo): HTMLElement {
    const name = element("span", { class: "version-name" }, [versionTitle(version)]);
    const button = element("button", { type: "button", class: "version", "data-id": String(version.id) }, [
      element("time", { class: "version-time", title: absolute.format(version.created_ms) }, [
        timeLabel.format(version.created_ms),
      ]),
      name,
      element("ul", { class: "version-editors" }, version.editors.map(editorChip)),
    ]);
    button.addEventListener("click", () => void select(version, button));
    return button;
  }

  async function select(version: VersionInfo, button: HTMLElement): Promise<void> {
    selected?.button.removeAttribute("aria-current");
    button.setAttribute("aria-current", "true");
    selected = { version, button };
    previewTitle.textContent = `${versionTitle(version) || "Version"} · ${absolute.format(version.created_ms)}`;
    context.page.hidden = true;
    preview.hidden = false;
    quill.setText("Loading…\n");
    try {
      const diff = await compareVersion(docId, version.id, token);
      if (selected?.version !== version) return;
      quill.setContents(previewOps(diff.spans) as never, "api");
      preview.dataset.versionId = String(version.id);
    } catch (error) {
      quill.setText(`Could not show this version: ${(error as Error).message}\n`);
    }
  }

  restore.addEventListener("click", async () => {
    if (!selected) return;
    const { version } = selected;
    if (!confirm(`Restore the version of ${absolute.format(version.created_ms)}? Everyone editing sees the change.`)) return;
    try {
      await restoreVersion(docId, version.id, savedUser(), token);
      notify(`Restored the version of ${absolute.format(version.created_ms)}.`);
      close();
    } catch (error) {
      notify(`Could not restore the version: ${(error as Error).message}`);
    }
  });

  rename.addEventListener("click", async () => {
    if (!selected) return;
    const { version, button } = selected;
    const name = prompt("Name this version", version.name ?? "")?.trim();
    if (!name) return;
    try {
      const renamed = await renameVersion(docId, version.id, name, token);
      version.name = renamed.name;
      button.querySelector(".version-name")!.textContent = versionTitle(version);
      previewTitle.textContent = `${name} · ${absolute.format(version.created_ms)}`;
    } catch (error) {
      notify(`Could not name the version: ${(error as Error).message}`);
    }
  });

  nameCurrent.addEventListener("click", async () => {
    const name = prompt("Name the current version")?.trim();
    if (!name) return;
    try {
      await nameCurrentVersion(docId, name, token);
      // The new version is the newest: list again from the top.
      list.replaceChildren(more);
      more.textContent = "Loading…";
      offset = 0;
      lastDay = "";
      await fill();
    } catch (error) {
      notify(`Could not name the version: ${(error as Error).message}`);
    }
  });

  // The next page when the end of the list comes into view.
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) void fill();
  }, { root: list });
  observer.observe(more);
  /** Pages until the end of the list is out of view (a page that does not fill the list leaves
   * it in view, which fires no new event) or there are no more. One caller at a time: another
   * returns at once. */
  async function fill(): Promise<void> {
    while (!loading && offset !== null && more.getBoundingClientRect().top < list.getBoundingClientRect().bottom) {
      await loadMore();
    }
  }

  function close(): void {
    observer.disconnect();
    panel.remove();
    preview.remove();
    context.page.hidden = false;
    document.body.classList.remove("history-open");
    document.removeEventListener("keydown", onKey);
  }
  function onKey(event: KeyboardEvent): void {
    if (event.key === "Escape") close();
  }
  panel.close = close;
  closeButton.addEventListener("click", close);
  document.addEventListener("keydown", onKey);
  void fill();
}
