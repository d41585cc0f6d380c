// The device's copy of a document as Markdown, for when the server will not take its changes
// (access removed, document deleted, a stale copy): written by quire-model's Markdown writer, the
// server export's own, compiled into a WebAssembly module of its own (client-markdown). That
// module is loaded the first time it is needed, not with the page: it weighs more than the
// replica, and most sessions never need it.

import type { QuireDoc } from "../../client-wasm/pkg/quire_client.js";
import init, { markdown } from "../../client-markdown/pkg/quire_markdown.js";
import { fileName, saveFile } from "./download";

let module: Promise<unknown> | null = null;

/** Loads the writer (once; again after a failure). Called as soon as a download may be needed,
 * while the server is still reachable. */
export function loadWriter(): Promise<unknown> {
  module ??= init({ module_or_path: "/assets/quire_markdown_bg.wasm" }).catch((error) => {
    module = null;
    throw error;
  });
  return module;
}

/** The whole document as this device has it (its unsynced edits included), as Markdown. */
export async function deviceMarkdown(doc: QuireDoc): Promise<string> {
  await loadWriter();
  return markdown(doc.encodeState());
}

/** Downloads the device's copy as `<title>.md`. */
export async function downloadCopy(doc: QuireDoc): Promise<void> {
  const text = await deviceMarkdown(doc);
  saveFile(`${fileName(doc.title() ?? "")}.md`, new Blob([text], { type: "text/markdown;charset=utf-8" }));
}
