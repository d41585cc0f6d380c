// Quill ⇄ the replica's YText, both ways, safe while the user composes with an input method.
//
// Local: Quill's `text-change` with source "user" is applied to the replica as one
// transaction, and the update it produced is sent. Remote: the replica's content change is
// applied to Quill with source "api" (so it is never sent back: no echo loop). Quill shifts
// the local selection over a remote change itself, so the caret does not jump.
//
// Input methods. While a composition is open (pinyin, kana, …) Quill holds the DOM in a batch
// and emits nothing; applying a remote change then would end that batch under the IME's feet,
// and the composed text would land twice, in the wrong place, or not at all. So a remote change
// that arrives during a composition is *held*: it is in the replica already, not yet in Quill.
// When the composition commits, Quill emits the local change relative to what Quill shows,
// which lacks the held changes. Applying it to the replica as is would put it at the wrong
// place, so it is rebased first (operational transform over the held changes, Delta's own
// `transform`), and the held changes are rebased over it before Quill gets them:
//
//     replica: shown ∘ held ∘ held.transform(local, true)
//     Quill:   shown ∘ local ∘ local.transform(held, false)
//
// Delta's transform makes these equal (`a ∘ a.transform(b, true) = b ∘ b.transform(a, false)`),
// so both end at the same text. As a last guard, after every composition the binding compares
// Quill with the replica and, if they differ, resets Quill from the replica (never the other
// way: the replica is what the other users have).
//
// Embeds. quire's model has none, but a stock client may insert one (an image from y-quill).
// Quill, limited to quire's formats, would throw on it half-way through an update and stop
// emitting changes. The binding shows each embed as one U+FFFC character instead: the same
// length, so every position still lines up, and deleting it deletes the embed.

import Quill, { Delta } from "quill";
import type { QuillOp } from "../../client-wasm/pkg/quire_client.js";
import type { Session } from "./session";

export class Binding {
  /** Remote changes the replica has and Quill does not show yet, relative to what it shows. */
  private held: Delta | null = null;
  private composing = false;

  constructor(
    private readonly quill: Quill,
    private readonly session: Session,
  ) {
    quill.setContents(displayable(session.doc.contentDelta()), "api");
    // Undo must not take back the loaded document (the history records only "user" changes,
    // but the first load would otherwise be the base of the first undo).
    quill.history.clear();
    quill.on(Quill.events.TEXT_CHANGE, this.localChange);
    // Quill's own listeners were registered first, so they run first: at `compositionend`
    // Quill queues a microtask that commits the composition (and emits its text-change); the
    // microtask queued here runs after it.
    quill.root.addEventListener("compositionstart", this.compositionStart);
    quill.root.addEventListener("compositionend", this.compositionEnd);
  }

  /** A remote change to the body, from the replica. */
  remoteChange(ops: QuillOp[]): void {
    const change = displayable(ops);
    if (this.composing || this.held) {
      this.held = this.held ? this.held.compose(change) : change;
      return;
    }
    this.show(change);
  }

  /** Applies a change to Quill; if Quill refuses it, shows the replica afresh instead. */
  private show(change: Delta): void {
    try {
      this.quill.updateContents(change, "api");
    } catch (error) {
      console.error("quire: the editor refused a change; showing the document afresh", error);
      this.resetFromReplica();
    }
  }

  private localChange = (delta: Delta, _old: Delta, source: string): void => {
    if (source !== Quill.sources.USER) return;
    if (this.session.readOnly) {
      // A disabled Quill emits no user change; should one come anyway, the replica (what the
      // others have) wins.
      this.resetFromReplica();
      return;
    }
    let change = delta;
    if (this.held) {
      change = this.held.transform(delta, true);
      this.held = delta.transform(this.held, false);
    }
    let update: Uint8Array | undefined;
    try {
      update = this.session.doc.applyQuillDelta(change.ops as QuillOp[]);
    } catch (error) {
      // The replica refused the change and holds what it held: show that.
      console.error("quire: could not apply a local change", error);
      this.resetFromReplica();
      return;
    }
    this.session.commit(update);
  };

  private compositionStart = (): void => {
    this.composing = true;
  };

  private compositionEnd = (): void => {
    queueMicrotask(() => {
      this.composing = false;
      const held = this.held;
      this.held = null;
      if (held) this.show(held);
      this.checkConverged();
    });
  };

  /** Resets Quill from the replica if the two differ; keeps the caret where it was. */
  private checkConverged(): void {
    const shown = this.quill.getContents();
    const replica = displayable(this.session.doc.contentDelta());
    // Quill always ends with a newline the YText may not have.
    if (isSame(shown, replica) || isSame(shown, new Delta(replica.ops).insert("\n"))) return;
    console.warn("quire: the editor differed from the document after a composition; reset it");
    this.resetFromReplica();
  }

  private resetFromReplica(): void {
    this.held = null;
    const selection = this.quill.getSelection();
    this.quill.setContents(displayable(this.session.doc.contentDelta()), "api");
    if (selection) this.quill.setSelection(selection, "silent");
  }
}

/** U+FFFC OBJECT REPLACEMENT CHARACTER: one UTF-16 unit, like an embed. */
const EMBED_STANDIN = "\ufffc";

/** The ops as Quill can show them: embeds become one stand-in character each. */
function displayable(ops: QuillOp[]): Delta {
  return new Delta(
    ops.map((op) =>
      "insert" in op && typeof op.insert !== "string" ? { ...op, insert: EMBED_STANDIN } : op,
    ) as QuillOp[],
  );
}

function isSame(a: Delta, b: Delta): boolean {
  return a.diff(b).ops.length === 0;
}
