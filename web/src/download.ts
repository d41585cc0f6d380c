// Saving a file the app made or fetched (an export, a device's own copy) to the user's
// downloads: a `Blob` behind a temporary link, as a browser saves any download.

import { element } from "./dom";

/** How long a download's object URL lives: the browser has started the download long before. */
const URL_LIFETIME_MS = 60_000;

export function saveFile(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const link = element("a", { href: url, download: name, hidden: "" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), URL_LIFETIME_MS);
}

/** A title as a file name: no path separators or characters that file systems refuse. */
export function fileName(title: string): string {
  const name = title.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ").trim().slice(0, 100);
  return name || "Untitled document";
}
