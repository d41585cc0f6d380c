// The owner's Share dialog: links that let anyone who has one view or edit the document, without
// signing in (optionally for a limited time, with a label to tell them apart); each link can be
// copied again, and removed, which disconnects everyone who came in with it at once.

import { createLink, listLinks, removeLink, type LinkInfo } from "./api";
import { element } from "./dom";
import { absolute, fromNow } from "./time";

/** Expiry choices, in seconds ("" for a link that works until removed). */
const EXPIRIES: [string, string][] = [
  ["", "Never"],
  ["3600", "In 1 hour"],
  ["86400", "In 1 day"],
  ["604800", "In 7 days"],
  ["2592000", "In 30 days"],
];
/** The server takes labels of up to 200 bytes; 60 UTF-16 units never pass that (3 bytes each at
 * most for one unit, 4 for a pair). */
const LABEL_MAX = "60";
/** How long "Copied" shows on a copy button. */
const COPIED_MS = 2_000;

/** The Share button; it opens the dialog (built on first use) with the document's links. */
export function shareButton(docId: string, title: () => string): HTMLElement {
  const button = element("button", { type: "button", class: "primary share", "data-action": "share" }, ["Share"]);
  let dialog: ShareDialog | null = null;
  button.addEventListener("click", () => {
    dialog ??= new ShareDialog(docId);
    dialog.open(title());
  });
  return button;
}

class ShareDialog {
  private readonly dialog: HTMLDialogElement;
  private readonly heading = element("h2", { id: "share-title" });
  private readonly role = element("select", { name: "role", "aria-label": "Anyone with the link can" }, [
    element("option", { value: "view" }, ["view"]),
    element("option", { value: "edit" }, ["edit"]),
  ]);
  private readonly expires = element(
    "select",
    { name: "expires", "aria-label": "Expires" },
    EXPIRIES.map(([value, label]) => element("option", { value }, [label])),
  );
  private readonly label = element("input", {
    name: "label",
    maxlength: LABEL_MAX,
    placeholder: "Label (optional), e.g. For the board",
    "aria-label": "Label",
    autocomplete: "off",
  });
  private readonly create = element("button", { type: "submit", class: "primary", "data-action": "create-link" }, [
    "Create link",
  ]);
  private readonly error = element("p", { class: "share-error", role: "alert", hidden: "" });
  private readonly links = element("ul", { class: "links", "aria-label": "Links" });

  constructor(private readonly docId: string) {
    const form = element("form", { class: "new-link" }, [
      element("label", {}, ["Anyone with the link can ", this.role]),
      element("label", {}, ["Expires ", this.expires]),
      this.label,
      this.create,
    ]);
    const done = element("button", { type: "button", class: "secondary", "data-action": "close" }, ["Done"]);
    this.dialog = element("dialog", { class: "share-dialog", "aria-labelledby": "share-title" }, [
      this.heading,
      element("p", { class: "hint" }, [
        "Anyone with a link can open this document without signing in. Removing a link takes its access away at once.",
      ]),
      form,
      this.error,
      element("h3", {}, ["Links"]),
      this.links,
      element("div", { class: "dialog-actions" }, [done]),
    ]);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.createLink();
    });
    done.addEventListener("click", () => this.dialog.close());
    document.body.append(this.dialog);
  }

  open(title: string): void {
    this.heading.textContent = `Share “${title || "Untitled document"}”`;
    this.error.hidden = true;
    this.dialog.showModal();
    void this.refresh();
  }

  /** Lists the links the server has (another tab may have changed them). */
  private async refresh(): Promise<void> {
    try {
      this.show(await listLinks(this.docId));
    } catch (error) {
      this.fail("Could not list the links", error);
    }
  }

  private async createLink(): Promise<void> {
    this.create.disabled = true;
    this.error.hidden = true;
    try {
      const label = this.label.value.trim();
      const expires = Number(this.expires.value);
      const link = await createLink(this.docId, {
        role: this.role.value === "edit" ? "edit" : "view",
        ...(expires > 0 ? { expires_in_secs: expires } : {}),
        ...(label ? { label } : {}),
      });
      this.label.value = "";
      this.links.querySelector(".links-empty")?.remove();
      const row = this.row(link);
      this.links.append(row);
      row.querySelector<HTMLInputElement>(".link-url")?.select();
    } catch (error) {
      this.fail("Could not create the link", error);
    } finally {
      this.create.disabled = false;
    }
  }

  private show(links: LinkInfo[]): void {
    this.links.replaceChildren(...links.map((link) => this.row(link)));
    if (links.length === 0) {
      this.links.append(element("li", { class: "links-empty" }, ["No links yet: create one to share this document."]));
    }
  }

  private row(link: LinkInfo): HTMLElement {
    const url = element("input", { class: "link-url", readonly: "", value: link.url, "aria-label": "Link" });
    const copy = element("button", { type: "button", class: "secondary", "data-action": "copy" }, ["Copy link"]);
    const remove = element("button", { type: "button", class: "danger", "data-action": "remove" }, ["Remove access"]);
    const row = element("li", { class: "link", "data-id": link.id }, [
      element("div", { class: "link-head" }, [
        element("span", { class: "link-role", "data-role": link.role }, [link.role === "edit" ? "Can edit" : "Can view"]),
        ...(link.label ? [element("span", { class: "link-label" }, [link.label])] : []),
        expiry(link),
      ]),
      element("div", { class: "link-row" }, [url, copy, remove]),
    ]);
    url.addEventListener("focus", () => url.select());
    copy.addEventListener("click", async () => {
      await copyText(url);
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy link"), COPIED_MS);
    });
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      try {
        await removeLink(this.docId, link.id);
        row.remove();
        if (this.links.childElementCount === 0) this.show([]);
      } catch (error) {
        remove.disabled = false;
        this.fail("Could not remove the link", error);
      }
    });
    return row;
  }

  private fail(what: string, error: unknown): void {
    this.error.textContent = `${what}: ${(error as Error).message}`;
    this.error.hidden = false;
  }
}

function expiry(link: LinkInfo): HTMLElement {
  if (link.expires_ms === null) return element("span", { class: "link-expiry" }, ["Never expires"]);
  const at = new Date(link.expires_ms);
  const text = link.expires_ms <= Date.now() ? "Expired" : `Expires ${fromNow(link.expires_ms)}`;
  return element("time", { class: "link-expiry", datetime: at.toISOString(), title: absolute.format(at) }, [text]);
}

/** Puts the input's text on the clipboard; where the Clipboard API is refused (an insecure
 * origin, a denied permission), the input's selection is copied the old way. */
async function copyText(input: HTMLInputElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
}
