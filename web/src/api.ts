// The HTTP API the app uses (`/api`, see `/api/openapi.json`): typed calls, and quire's JSON
// errors turned into exceptions whose message is the server's.

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

export class ApiError extends Error {}

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
export async function importFile(docId: string, file: File): Promise<void> {
  const extension = file.name.split(".").pop()?.toLowerCase() ?? "";
  const type = IMPORTS[extension];
  if (!type) throw new ApiError(`quire cannot import .${extension} files (use .md, .html or .txt)`);
  await json(
    await fetch(contentUrl(docId), { method: "PUT", headers: { "content-type": type }, body: file }),
  );
}

export function contentUrl(docId: string, format?: string): string {
  const url = `/api/docs/${encodeURIComponent(docId)}/content`;
  return format ? `${url}?format=${format}` : url;
}

async function json<T>(response: Response): Promise<T> {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(message);
  }
  return body as T;
}
