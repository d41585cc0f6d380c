// The editor's File menu: Version history (the side panel, see history.ts), Import (replaces the
// content with a .md, .html or .txt file) and Export (downloads Markdown, HTML or plain text),
// the last two through the HTTP API, so the app converts exactly as `quire export`/`quire import`
// and any script do. All carry the document's credentials (a share link's token as a bearer
// token), so they are fetched rather than followed as links; Import is there only for those who
// may edit, Version history for editors and the owner.

import { EXPORTS, exportFile, IMPORTS, importFile } from "./api";
import { element } from "./dom";
import { fileName, saveFile } from "./download";

export interface MenuContext {
  docId: string;
  /** The share link's token, or null (the owner's session). */
  token: string | null;
  title(): string;
  /** Whether this user may change the document now. */
  canEdit(): boolean;
  /** Whether this user may see the document's history (editors and the owner). */
  canSeeHistory(): boolean;
  openHistory(): void;
  notify(message: string): void;
}

export function fileMenu(context: MenuContext): { element: HTMLElement } {
  const { docId, token, notify } = context;
  const picker = element("input", {
    type: "file",
    accept: Object.keys(IMPORTS).map((extension) => `.${extension}`).join(","),
    hidden: "",
  });
  const importItem = element("button", { type: "button", class: "menu-item", "data-action": "import" }, [
    "Import…",
  ]);
  const historyItem = element("button", { type: "button", class: "menu-item", "data-action": "history" }, [
    "Version history",
  ]);
  historyItem.addEventListener("click", () => context.openHistory());
  const separator = element("hr");
  const exports = EXPORTS.map(({ format, label, extension }) => {
    const item = element("button", { type: "button", class: "menu-item", "data-format": format }, [
      `Download as ${label}`,
    ]);
    item.addEventListener("click", async () => {
      try {
        const file = await exportFile(docId, format, token);
        // Named now: the title may have changed since the menu was built.
        saveFile(`${fileName(context.title())}.${extension}`, file);
      } catch (error) {
        notify(`Could not download the document: ${(error as Error).message}`);
      }
    });
    return item;
  });
  const details = element("details", { class: "menu" }, [
    element("summary", {}, ["File"]),
    element("div", { class: "menu-items" }, [historyItem, importItem, picker, separator, ...exports]),
  ]);

  details.addEventListener("toggle", () => {
    const canEdit = context.canEdit();
    importItem.hidden = !canEdit;
    historyItem.hidden = !context.canSeeHistory();
    separator.hidden = importItem.hidden && historyItem.hidden;
  });
  // A chosen item closes the menu, as menus do.
  for (const item of [historyItem, importItem, ...exports]) item.addEventListener("click", () => (details.open = false));
  importItem.addEventListener("click", () => picker.click());
  picker.addEventListener("change", async () => {
    const file = picker.files?.[0];
    picker.value = "";
    details.open = false;
    if (!file) return;
    if (!confirm(`Replace this document's content with ${file.name}? Everyone editing it will see the change.`)) {
      return;
    }
    try {
      // The import reaches this editor like anyone's edit, through the document's socket.
      await importFile(docId, file, token);
      notify(`Imported ${file.name}.`);
    } catch (error) {
      notify(`Could not import ${file.name}: ${(error as Error).message}`);
    }
  });
  return { element: details };
}
