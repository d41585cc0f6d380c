// What the editor says, and offers, when the server will not take this device's changes any
// more: access removed or expired, no credentials, the document deleted, or this copy belonging
// to a deleted document of the same id.
//
// Changes the server never had are the user's work and are never lost without their say: they
// are offered for download as Markdown (the whole document as this device has it). With access
// removed the copy stays on the device (a new link may let it sync). With the document deleted
// it is erased after the download, or when the user discards it. A stale copy is never merged:
// after the offer, the current document opens in its place.

import type { Ending } from "./connection";
import { element } from "./dom";
import { downloadCopy, loadWriter } from "./markdown";
import type { Session } from "./session";

/** The status line for each ending. */
export const ENDED_STATUS: Record<Ending, string> = {
  revoked: "Your access to this document was removed",
  expired: "This link has expired",
  "no-access": "You need a share link or to sign in to open this document",
  deleted: "This document was deleted",
  stale: "This copy belongs to a deleted document",
};

/** What the notice explains under the status. */
const EXPLAINED: Record<Ending, string> = {
  revoked: "The owner removed the link you opened it with.",
  expired: "Ask the document's owner for a new link.",
  "no-access": "Open the link someone shared with you, or sign in with the address quire printed when it started.",
  deleted: "It cannot be edited any more.",
  stale:
    "This document was deleted and created again since this device last synced it. " +
    "The copy on this device belongs to the deleted one and cannot be merged into the current document.",
};

/** The notice for `ending`, or null when there is nothing to say beyond the status (a deleted
 * document with nothing unsynced: its copy is gone already). A stale copy with nothing unsynced
 * is dropped at once and the current document opened (the notice stays if that fails). */
export function endedNotice(session: Session, ending: Ending): HTMLElement | null {
  const unsynced = session.local.pending;
  if (ending === "deleted" && !unsynced) return null;

  const said = element("p", { class: "ended-more" });
  const problem = element("p", { class: "ended-problem", hidden: "" });
  const actions = element("div", { class: "ended-actions" });
  const notice = element("div", { class: "banner ended", role: "alert", "data-ending": ending }, [
    element("p", { class: "ended-message" }, [`${ENDED_STATUS[ending]}. ${EXPLAINED[ending]}`]),
    said,
    actions,
    problem,
  ]);
  const button = (action: string, label: string, run: () => Promise<void>, primary = false) => {
    const node = element("button", { type: "button", class: primary ? "primary" : "secondary", "data-action": action }, [
      label,
    ]);
    node.addEventListener("click", async () => {
      problem.hidden = true;
      node.disabled = true;
      try {
        await run();
      } catch (error) {
        problem.textContent = `That did not work: ${(error as Error).message}`;
        problem.hidden = false;
      } finally {
        node.disabled = false;
      }
    });
    actions.append(node);
    return node;
  };

  if (unsynced) {
    // Fetched now, while the server is still reachable: the user may click once it is not.
    loadWriter().catch(() => {});
    said.textContent =
      ending === "deleted"
        ? "Your changes that were not synced are still on this device: download them before they are removed."
        : "Your changes that were not synced are kept on this device.";
    button(
      "download-changes",
      "Download my changes",
      async () => {
        await downloadCopy(session.doc);
        if (ending === "deleted") {
          await session.forgetCopy();
          said.textContent = "Your changes were downloaded, and this device's copy was removed.";
          actions.replaceChildren();
        }
      },
      true,
    );
  } else {
    said.hidden = true;
  }
  if (ending === "deleted") {
    button("discard", "Discard them", async () => {
      await session.forgetCopy();
      said.textContent = "This device's copy was removed.";
      actions.replaceChildren();
    });
  }
  if (ending === "stale") {
    const open = button("open-current", "Open the current document", () => openCurrent(session));
    if (!unsynced) open.click();
  }
  return notice;
}

/** Drops the stale copy and loads the page again: the current document, from the server. */
async function openCurrent(session: Session): Promise<void> {
  await session.forgetCopy();
  location.reload();
}
