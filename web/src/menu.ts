// The editor's File menu: Import (replaces the content with a .md, .html or .txt file) and
// Export (downloads Markdown, HTML or plain text), both through the HTTP API, so the app
// converts exactly as `quire export`/`quire import` and any script do.

import { contentUrl, EXPORTS, IMPORTS, importFile } from "./api";
import { element } from "./dom";

export function fileMenu(
  docId: string,
  title: () => string,
  notify: (message: string) => void,
): { element: HTMLElement } {
  const picker = element("input", {
    type: "file",
    accept: Object.keys(IMPORTS).map((extension) => `.${extension}`).join(","),
    hidden: "",
  });
  const importItem = element("button", { type: "button", class: "menu-item", "data-action": "import" }, [
    "Import…",
  ]);
  const exports = EXPORTS.map(({ format, label, extension }) => {
    const link = element("a", { class: "menu-item", href: contentUrl(docId, format), "data-format": format }, [
      `Download as ${label}`,
    ]);
    // Named when clicked: the title may have changed since the menu was built.
    link.addEventListener("click", () => (link.download = `${fileName(title())}.${extension}`));
    return link;
  });
  const details = element("details", { class: "menu" }, [
    element("summary", {}, ["File"]),
    element("div", { class: "menu-items" }, [importItem, picker, element("hr"), ...exports]),
  ]);

  // A chosen item closes the menu, as menus do (the link's download still goes ahead).
  for (const item of [importItem, ...exports]) item.addEventListener("click", () => (details.open = false));
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
      await importFile(docId, file);
      notify(`Imported ${file.name}.`);
    } catch (error) {
      notify(`Could not import ${file.name}: ${(error as Error).message}`);
    }
  });
  return { element: details };
}

/** A title as a file name: no path separators or characters that file systems refuse. */
function fileName(title: string): string {
  const name = title.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ").trim().slice(0, 100);
  return name || "Untitled document";
}
