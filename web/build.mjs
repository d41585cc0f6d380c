// Builds the app into dist/, the directory `quire serve` serves (its --web-dir):
//   dist/index.html             one page for every route (/ and /d/{doc}); it loads:
//   dist/assets/app.js, app.css the bundle (src/main.ts and everything it imports, Quill's CSS)
//   dist/assets/quire_client_bg.wasm   the replica, from ../client-wasm/pkg (`cargo xtask wasm`)
//   dist/assets/quire_markdown_bg.wasm the Markdown writer, from ../client-markdown/pkg, loaded
//                                      only when a device must save its copy itself
//   dist/sw.js                  the service worker (sw/sw.ts), at the root so its scope is the app
//   and a `.gz` twin of each, which the server sends to browsers that accept gzip.
// Run by `cargo xtask web` (and so by `cargo xtask run` and `cargo xtask test`).
import { build } from "esbuild";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

const here = new URL(".", import.meta.url);
const dist = new URL("dist/", here);
const modules = [
  new URL("../client-wasm/pkg/quire_client_bg.wasm", here),
  new URL("../client-markdown/pkg/quire_markdown_bg.wasm", here),
];

await rm(dist, { recursive: true, force: true });
await mkdir(new URL("assets/", dist), { recursive: true });
await build({
  entryPoints: { app: new URL("src/main.ts", here).pathname },
  outdir: new URL("assets/", dist).pathname,
  bundle: true,
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
await build({
  entryPoints: [new URL("sw/sw.ts", here).pathname],
  outfile: new URL("sw.js", dist).pathname,
  bundle: true,
  format: "iife",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  logLevel: "warning",
});
await copyFile(new URL("index.html", here), new URL("index.html", dist));
const wasmFiles = [];
for (const module of modules) {
  const file = `assets/${module.pathname.split("/").pop()}`;
  await copyFile(module, new URL(file, dist));
  wasmFiles.push(file);
}
// The server sends these to browsers that accept gzip (tower-http's precompressed files):
// the module and the bundle shrink to about a third.
for (const file of ["index.html", "assets/app.js", "assets/app.css", ...wasmFiles]) {
  const bytes = await readFile(new URL(file, dist));
  await writeFile(new URL(`${file}.gz`, dist), gzipSync(bytes, { level: 9 }));
}
console.log(`web: built ${dist.pathname}`);
