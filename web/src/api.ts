// The HTTP API the app uses (`/api`, see `/api/openapi.json`): typed calls, and quire's JSON
// errors turned into exceptions whose message is the server's. Calls about one document take
// the token of its share link (null: the owner's session cookie, which the browser sends).

export interface DocInfo {
  id: string;
  title: string;
  created_ms: number;
  updated_ms: number;
  size_bytes: number;
}

export interface DocList {
  docs: DocInfo[];
  total: number;
  next_offset: number | null;
}

/** The formats the editor menu offers, with what each is called in the API. */
export const EXPORTS = [
  { format: "markdown", label: "Markdown (.md)", extension: "md" },
  { format: "html", label: "Web page (.html)", extension: "html" },
  { format: "text", label: "Plain text (.txt)", extension: "txt" },
] as const;

/** Importable file extensions and the Content-Type that tells the API their format. */
export const IMPORTS: Record<string, string> = {
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
  txt: "text/plain",
};

/** What someone may do with a document, each role including the ones before it. */
export type Role = "view" | "edit" | "owner";

/** `GET /api/session`: who the caller is. */
export interface SessionInfo {
  /** False when the server runs without access control (everyone is the owner). */
  access_control: boolean;
  owner: boolean;
  /** With a document: what the caller may do with it; null: nothing. */
  role: Role | null;
}

/** A share link, as the owner sees it. */
export interface LinkInfo {
  id: string;
  role: "view" | "edit";
  /** The address to share: the app's `/d/{doc}`, the token in the fragment. */
  url: string;
  token: string;
  label: string | null;
  created_ms: number;
  /** When it stops working; null: when removed. */
  expires_ms: number | null;
}

export interface NewLink {
  role: "view" | "edit";
  expires_in_secs?: number;
  label?: string;
}

export class ApiError extends Error {}

/** A session question has its answer in milliseconds; a network that swallows requests must not
 * leave the page waiting to learn that it is offline. */
const SESSION_TIMEOUT_MS = 5_000;

/** Who the caller is, and (with `docId`) what it may do with that document, for `token` (null:
 * the session cookie alone). */
export async function getSession(docId: string | null, token: string | null): Promise<SessionInfo> {
  const query = docId === null ? "" : `?doc=${encodeURIComponent(docId)}`;
  return json(
    await fetch(`/api/session${query}`, { headers: bearer(token), signal: AbortSignal.timeout(SESSION_TIMEOUT_MS) }),
  );
}

export async function listLinks(docId: string): Promise<LinkInfo[]> {
  const list: { links: LinkInfo[] } = await json(await fetch(linksUrl(docId)));
  return list.links;
}

export async function createLink(docId: string, link: NewLink): Promise<LinkInfo> {
  return json(
    await fetch(linksUrl(docId), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(link),
    }),
  );
}

/** Removes a link: everyone connected with it is disconnected at once. */
export async function removeLink(docId: string, linkId: string): Promise<void> {
  const response = await fetch(`${linksUrl(docId)}/${encodeURIComponent(linkId)}`, { method: "DELETE" });
  if (!response.ok) await json(response);
}

function linksUrl(docId: string): string {
  return `/api/docs/${encodeURIComponent(docId)}/links`;
}

export async function listDocs(offset = 0): Promise<DocList> {
  return json(await fetch(`/api/docs?offset=${offset}`));
}

export async function createDoc(): Promise<DocInfo> {
  return json(
    await fetch("/api/docs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    }),
  );
}

/** Replaces the document's content with `file`; its format comes from the file's extension. */
export async function importFile(docId: string, file: File, token: string | null): Promise<void> {
  const extension = file.name.split(".").pop()?.toLowerCase() ?? "";
  const type = IMPORTS[extension];
  if (!type) throw new ApiError(`quire cannot import .${extension} files (use .md, .html or .txt)`);
  await json(
    await fetch(contentUrl(docId), {
      method: "PUT",
      headers: { "content-type": type, ...bearer(token) },
      body: file,
    }),
  );
}

/** The document exported as `format`, as the server writes it. */
export async function exportFile(docId: string, format: string, token: string | null): Promise<Blob> {
  const response = await fetch(contentUrl(docId, format), { headers: bearer(token) });
  if (!response.ok) await json(response);
  return response.blob();
}

function contentUrl(docId: string, format?: string): string {
  const url = `/api/docs/${encodeURIComponent(docId)}/content`;
  return format ? `${url}?format=${format}` : url;
}

/** Who made changes (see `AuthorInfo` in the OpenAPI document). */
export type Author =
  | { kind: "person"; name: string; color: string | null }
  | { kind: "imported" }
  | { kind: "restored"; version: number; by: { name: string; color: string | null } | null }
  | { kind: "unknown" };

/** A version of a document. */
export interface VersionInfo {
  id: number;
  created_ms: number;
  name: string | null;
  kind: "auto" | "manual" | "restore";
  restored_from: number | null;
  /** Who changed something since the version before. */
  editors: Author[];
  size_bytes: number;
}

export interface VersionList {
  versions: VersionInfo[];
  total: number;
  next_offset: number | null;
}

/** A span of a comparison: text (or an embed) kept, inserted, deleted or reformatted. */
export interface SpanInfo {
  change: "kept" | "inserted" | "deleted" | "formatted";
  insert: string | Record<string, unknown>;
  attributes?: Record<string, unknown>;
  old_attributes?: Record<string, unknown>;
  author?: Author;
  candidates?: Author[];
}

export interface DiffInfo {
  from: { id: number } | null;
  to: { id: number } | null;
  old_title: string;
  title: string;
  spans: SpanInfo[];
}

function versionsUrl(docId: string, rest = ""): string {
  return `/api/docs/${encodeURIComponent(docId)}/versions${rest}`;
}

/** One page of the document's versions, newest first. */
export async function listVersions(docId: string, offset: number, limit: number, token: string | null): Promise<VersionList> {
  return json(await fetch(versionsUrl(docId, `?offset=${offset}&limit=${limit}`), { headers: bearer(token) }));
}

/** What version `v` changed since the one before it, each change with its author. */
export async function compareVersion(docId: string, v: number, token: string | null): Promise<DiffInfo> {
  return json(await fetch(versionsUrl(docId, `/${v}/diff`), { headers: bearer(token) }));
}

/** A named version of the document as it is now. */
export async function nameCurrentVersion(docId: string, name: string, token: string | null): Promise<VersionInfo> {
  return json(
    await fetch(versionsUrl(docId), {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify({ name }),
    }),
  );
}

export async function renameVersion(docId: string, v: number, name: string | null, token: string | null): Promise<VersionInfo> {
  return json(
    await fetch(versionsUrl(docId, `/${v}`), {
      method: "PATCH",
      headers: { "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify({ name }),
    }),
  );
}

/** Restores version `v`: an edit everyone connected sees, attributed to `by`. */
export async function restoreVersion(
  docId: string,
  v: number,
  by: { name: string; color: string } | null,
  token: string | null,
): Promise<{ changed: boolean }> {
  return json(
    await fetch(versionsUrl(docId, `/${v}/restore`), {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer(token) },
      body: JSON.stringify(by ? { by } : {}),
    }),
  );
}

/** The header that carries a share link's token (none for the owner: the cookie does). */
function bearer(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function json<T>(response: Response): Promise<T> {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(message);
  }
  return body as T;
}
