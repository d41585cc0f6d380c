// The app's entry: one page, two routes. `/` lists the documents; `/d/{doc}` edits one.

import "quill/dist/quill.snow.css";
import "./styles.css";
import { editorPage } from "./editor";
import { element } from "./dom";
import { listPage } from "./list";

/** Document ids as the server accepts them (quire-model's `DocId`). */
const DOC_ID = /^[A-Za-z0-9._-]{1,128}$/;

async function route(root: HTMLElement): Promise<void> {
  const path = location.pathname;
  if (path === "/") return listPage(root);
  const match = /^\/d\/([^/]+)$/.exec(path);
  const id = match && decodeURIComponent(match[1]);
  if (id && DOC_ID.test(id)) return editorPage(root, id);
  root.replaceChildren(
    element("main", { class: "list-page" }, [
      element("h1", {}, ["No such page"]),
      element("p", {}, [element("a", { href: "/" }, ["See all documents"])]),
    ]),
  );
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
