// The console's build (docs/console.md): one static bundle under console/dist/console/, served by
// the API at /console on Node and on the edge. No inline script (the CSP forbids it), no CDN.
import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  plugins: [preact()],
  logLevel: "warn",
  build: {
    outDir: "dist/console",
    emptyOutDir: true,
    target: "es2022",
    // The polyfill would be an inline script; every supported browser has modulepreload.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
});
