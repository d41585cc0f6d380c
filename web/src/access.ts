// What this device may do with a document, and the credentials it proves it with: the owner's
// session (a cookie the browser sends by itself), or a share link's token, kept per document on
// this device.
//
// A share link is `/d/{doc}#token=…`: the token rides in the fragment, which never reaches a
// server log or a Referer. The app takes it out of the address at once (so it is not left in the
// history or copied along with the address), keeps it for that document, and from then on sends
// it with everything it asks about the document: as `?token=` on the socket (as a stock
// y-websocket client passes parameters) and as `Authorization: Bearer` on API calls. Kept in
// localStorage, so a reload or an offline start still has it.
//
// The owner's session outranks a link: an owner who opens one of their own links keeps owning
// the document (as in Google Docs), so the session is asked about too, without the token.

import { getSession, type Role } from "./api";

export type { Role } from "./api";

export interface Access {
  /** The token sent for this document, or null: the owner's session (or no credentials). */
  token: string | null;
  /** What this device may do, as far as it knows: the server's answer, or (offline) what it
   * answered last time, or what the token says. Null: nothing, or not known. */
  role: Role | null;
  /** Whether `role` is the server's answer of now (not a memory). */
  answered: boolean;
  /** Whether the server checks access at all (without, there is nothing to share). */
  accessControl: boolean;
}

/** Why the server refuses a device a document. */
export type Refusal = "revoked" | "expired" | "no-access";

const PREFIX = "quire.access.";
/** What this page keeps when localStorage cannot (disabled, full): a link opened here still
 * works until the page goes. */
const memory = new Map<string, Kept>();

/** What the device keeps per document. */
interface Kept {
  token?: string;
  role?: Role;
}

/**
 * Takes a share link's token out of the address (`#token=…`): kept for `docId`, gone from the
 * address bar and from this history entry. A new link replaces the one kept before (and what
 * the old one was known to allow).
 */
export function takeLinkToken(docId: string): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token === null) return;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  if (token) keep(docId, { token });
}

/** How long opening a document waits for the server to say what this device may do. Past it,
 * the document opens with what the device remembers (a network that swallows requests must not
 * keep a copy on the device from showing), and the socket finds out the rest. */
const ANSWER_WAIT_MS = 1_500;

/** The device's credentials for `docId` and what the server says they allow (asked now; if it
 * does not answer soon, what the device remembers). */
export function resolveAccess(docId: string): Promise<Access> {
  const kept = load(docId);
  const token = kept.token ?? null;
  const role = kept.role ?? (token ? claims(token)?.role ?? null : null);
  const remembered: Access = { token, role, answered: false, accessControl: true };
  const waited = new Promise<Access>((resolve) => setTimeout(() => resolve(remembered), ANSWER_WAIT_MS));
  return Promise.race([ask(docId, kept, remembered), waited]);
}

async function ask(docId: string, kept: Kept, remembered: Access): Promise<Access> {
  const token = remembered.token;
  const [session, linked] = await Promise.all([
    getSession(docId, null).catch(() => null),
    token ? getSession(docId, token).catch(() => null) : null,
  ]);
  // No answer (offline, or the server is down): what the device knew.
  if (!session) return remembered;
  const accessControl = session.access_control;
  // The owner's session (or no link: the server's answer is all there is to know).
  if (session.owner || !token) return { token: null, role: session.role, answered: true, accessControl };
  if (!linked) return { ...remembered, accessControl };
  if (linked.role) keep(docId, { ...kept, role: linked.role });
  return { token, role: linked.role, answered: true, accessControl };
}

/**
 * Why the server refuses `docId` to these credentials, asked after a socket failed to open (a
 * browser sees a refused upgrade only as a failure, never its status). Null: it does not refuse
 * them (the failure was something else: a restart, a full server); undefined: no answer.
 */
export async function refusal(docId: string, token: string | null): Promise<Refusal | null | undefined> {
  const answer = await getSession(docId, token).catch(() => undefined);
  if (!answer) return undefined;
  if (answer.role) return null;
  if (!token) return "no-access";
  const expires = claims(token)?.exp;
  return expires !== undefined && expires * 1000 <= Date.now() ? "expired" : "revoked";
}

/** The claims of a token, read without checking it (the server checks it; the app only shows
 * what it says while the server cannot be asked). */
function claims(token: string): { role?: Role; exp?: number } | null {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const value = JSON.parse(atob(payload));
    const role = ["view", "edit"].includes(value?.role) ? (value.role as Role) : undefined;
    const exp = typeof value?.exp === "number" ? value.exp : undefined;
    return { role, exp };
  } catch {
    return null;
  }
}

function load(docId: string): Kept {
  try {
    const stored = localStorage.getItem(PREFIX + docId);
    if (stored === null) return memory.get(docId) ?? {};
    const kept = JSON.parse(stored);
    return {
      token: typeof kept?.token === "string" ? kept.token : undefined,
      role: ["view", "edit", "owner"].includes(kept?.role) ? kept.role : undefined,
    };
  } catch {
    return memory.get(docId) ?? {};
  }
}

function keep(docId: string, kept: Kept): void {
  memory.set(docId, kept);
  try {
    localStorage.setItem(PREFIX + docId, JSON.stringify(kept));
  } catch {
    // Storage disabled or full: the link works for this page, and must be opened again later.
  }
}
