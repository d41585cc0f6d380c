// quire's service worker: keeps the app shell (the page, the bundle, the stylesheet and the
// WASM module) so that a document opened before opens again with the server down or the
// network off. The documents themselves are in IndexedDB (src/local.ts); this only serves
// the code.
//
// Network first: while the server answers, every load gets the current build (file names
// carry no hash, so a cache-first worker would pin an old one), and the copy is refreshed.
// When the network fails, answers with a server error, or takes too long, the cached copy
// answers. The API and the WebSocket are never touched.

// A module (the export), so that this `self` shadows the WebWorker lib's global one.
export {};
declare const self: ServiceWorkerGlobalScope;

const CACHE = "quire-shell-v1";
/** Every page route answers with the same index.html, cached under "/". */
const PAGE = "/";
const SHELL = [PAGE, "/assets/app.js", "/assets/app.css", "/assets/quire_client_bg.wasm"];
/** A network that takes the request and never answers must not leave the page blank. */
const NETWORK_TIMEOUT_MS = 5_000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      await (await caches.open(CACHE)).addAll(SHELL);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  const isPage = request.mode === "navigate" && (url.pathname === "/" || url.pathname.startsWith("/d/"));
  const key = isPage ? PAGE : url.pathname.startsWith("/assets/") ? url.pathname : null;
  if (key) event.respondWith(networkFirst(request, key));
});

async function networkFirst(request: Request, key: string): Promise<Response> {
  const cache = await caches.open(CACHE);
  let response: Response | null = null;
  try {
    response = await fetch(request, { signal: AbortSignal.timeout(NETWORK_TIMEOUT_MS) });
  } catch {
    // Offline, refused, or too slow: the cached copy below.
  }
  const expected = response !== null && isExpected(key, response);
  if (response?.ok && expected) {
    await cache.put(key, response.clone());
    return response;
  }
  // A 5xx from a proxy while quire is down, or a portal's page, is no better than no answer.
  if (!response || response.status >= 500 || !expected) {
    const cached = await cache.match(key);
    if (cached) return cached;
  }
  return response ?? Response.error();
}

/** Whether a response is what the shell asked for (a captive portal answers every request
 * with its own HTML page; caching that as app.js would break the app offline). */
function isExpected(key: string, response: Response): boolean {
  const type = response.headers.get("content-type") ?? "";
  return key === PAGE || !type.startsWith("text/html");
}
