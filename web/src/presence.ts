// Who is here: our identity (a name picked once per device and a colour), our caret shared
// through awareness, the others' carets drawn in the editor, and the list of people.
//
// Awareness follows y-quill's convention, so a stock y-quill editor and quire show each
// other's carets: `user: {name, color}` and `cursor: {anchor, head}`, the two ends of the
// selection as Yjs relative positions in their JSON form (they stay put when text is inserted
// before them, unlike plain indexes).

import type Quill from "quill";
import type QuillCursors from "quill-cursors";
import type { Presence as PresenceState, RelativePosition } from "../../client-wasm/pkg/quire_client.js";
import type { Session } from "./session";
import { element } from "./dom";

export interface User {
  name: string;
  color: string;
}

const USER_KEY = "quire.user";
/** Distinct at a glance on white, and readable behind white caret labels. */
const COLORS = ["#d93025", "#1a73e8", "#188038", "#e37400", "#9334e6", "#c5221f", "#007b83", "#b06000"];

/** The identity saved on this device, if the user has picked one. */
export function savedUser(): User | null {
  try {
    const user = JSON.parse(localStorage.getItem(USER_KEY) ?? "null");
    if (typeof user?.name === "string" && typeof user?.color === "string") return user;
  } catch {
    // Unreadable (or storage disabled): ask again.
  }
  return null;
}

/** Saves `name` with a colour of its own (kept if the user only renames themselves). */
export function saveUser(name: string): User {
  const color = savedUser()?.color ?? COLORS[Math.floor(Math.random() * COLORS.length)];
  const user = { name, color };
  try {
    localStorage.setItem(USER_KEY, JSON.stringify(user));
  } catch {
    // Storage disabled: the name holds for this page.
  }
  return user;
}

/** Asks for a display name, once per device. Resolves with the identity. */
export function askUser(): Promise<User> {
  const saved = savedUser();
  if (saved) return Promise.resolve(saved);
  return new Promise((resolve) => {
    const input = element("input", { name: "name", required: "", maxlength: "40", autocomplete: "nickname" });
    const form = element("form", { method: "dialog" }, [
      element("h2", {}, ["What should others call you?"]),
      element("p", {}, ["Your name is shown beside your cursor. It is remembered on this device."]),
      input,
      element("button", { type: "submit" }, ["Start editing"]),
    ]);
    const dialog = element("dialog", { class: "name-dialog" }, [form]);
    form.addEventListener("submit", (event) => {
      const name = input.value.trim();
      if (!name) {
        event.preventDefault();
        return;
      }
      dialog.remove();
      resolve(saveUser(name));
    });
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    document.body.append(dialog);
    dialog.showModal();
  });
}

export class Presence {
  private cursor: { anchor: RelativePosition; head: RelativePosition } | null = null;

  constructor(
    private readonly session: Session,
    private readonly quill: Quill,
    private readonly people: HTMLElement,
    private user: User,
  ) {
    this.publish();
  }

  /** Shares our selection (an index range in UTF-16 units, as Quill reports it). A lost
   * focus keeps the last caret on show, as in Google Docs: others still see where we were. */
  selectionChanged(range: { index: number; length: number } | null): void {
    if (!range) return;
    const doc = this.session.doc;
    const cursor = {
      anchor: doc.relativePositionFromIndex(range.index),
      head: doc.relativePositionFromIndex(range.index + range.length),
    };
    // Remote edits move the index, not the relative position: send only real moves.
    if (JSON.stringify(cursor) === JSON.stringify(this.cursor)) return;
    this.cursor = cursor;
    this.publish();
  }

  rename(name: string): void {
    this.user = saveUser(name);
    this.publish();
    this.render();
  }

  /** Redraws the people list and the others' carets (presence changed). */
  render(): void {
    const others = this.others();
    this.people.replaceChildren(chip(this.user, true), ...others.map(([, user]) => chip(user, false)));
    this.placeCarets(others);
  }

  /** Puts the others' carets where their positions are now (the text changed). */
  placeCarets(others = this.others()): void {
    const doc = this.session.doc;
    const cursors = this.quill.getModule("cursors") as QuillCursors;
    for (const [id, user, cursor] of others) {
      const anchor = placed(() => cursor && doc.indexFromRelativePosition(cursor.anchor));
      const head = placed(() => cursor && doc.indexFromRelativePosition(cursor.head));
      if (anchor == null || head == null) {
        cursors.removeCursor(id);
        continue;
      }
      const color = safeColor(user.color);
      const existing = cursors.cursors().find((c) => c.id === id);
      if (existing && (existing.name !== user.name || existing.color !== color)) cursors.removeCursor(id);
      cursors.createCursor(id, user.name, color);
      cursors.moveCursor(id, { index: Math.min(anchor, head), length: Math.abs(head - anchor) });
    }
    const present = new Set(others.map(([id]) => id));
    for (const cursor of cursors.cursors()) {
      if (!present.has(cursor.id)) cursors.removeCursor(cursor.id);
    }
  }

  /** The other clients that say who they are: id, user, cursor. */
  private others(): [string, User, PresenceState["cursor"]][] {
    const me = String(this.session.doc.clientId);
    const states = this.session.doc.awarenessStates() as Record<string, PresenceState>;
    return Object.entries(states)
      .filter(([id, state]) => id !== me && typeof state.user?.name === "string")
      .map(([id, state]) => [id, state.user as User, state.cursor]);
  }

  private publish(): void {
    const state: PresenceState = { user: this.user, cursor: this.cursor };
    this.session.send(this.session.doc.setLocalState(state));
  }
}

/** A peer's cursor position, or null when it cannot be placed: one malformed cursor from
 * another client must not stop the rest of the presence from rendering. */
function placed(index: () => number | null | undefined): number | null {
  try {
    return index() ?? null;
  } catch {
    return null;
  }
}

function chip(user: User, isMe: boolean): HTMLElement {
  const label = isMe ? `${user.name} (you)` : user.name;
  const node = element("li", { class: "person", title: label }, [
    element("span", { class: "avatar" }, [initial(user.name)]),
    element("span", { class: "person-name" }, [label]),
  ]);
  node.style.setProperty("--person-color", safeColor(user.color));
  return node;
}

function initial(name: string): string {
  return Array.from(name.trim())[0]?.toUpperCase() ?? "?";
}

/** A colour from another client is data, not CSS: only `#rgb`/`#rrggbb` gets through. */
export function safeColor(color: unknown): string {
  return typeof color === "string" && /^#[0-9a-f]{3}([0-9a-f]{3})?$/i.test(color) ? color : "#5f6368";
}
