// GET /docs: a self-contained API reference rendered from the generated OpenAPI document
// (no CDN scripts: it must work offline and under a strict CSP).
import { Hono } from "hono";
import { html, raw } from "hono/html";

type Doc = {
  info?: { title?: string; description?: string; version?: string };
  paths?: Record<string, Record<string, Operation>>;
};
type Operation = {
  summary?: string;
  tags?: string[];
  parameters?: Array<{ name: string; in: string; required?: boolean }>;
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string }>;
};

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function renderOperation(method: string, path: string, op: Operation): string {
  const params = (op.parameters ?? [])
    .map((p) => `<code>${esc(p.name)}</code> (${esc(p.in)}${p.required ? ", required" : ""})`)
    .join(", ");
  const body = op.requestBody?.content
    ? Object.entries(op.requestBody.content)
        .map(
          ([type, c]) =>
            `<details><summary>${esc(type)}</summary><pre>${esc(JSON.stringify(c.schema, null, 2))}</pre></details>`,
        )
        .join("")
    : "";
  const responses = Object.entries(op.responses ?? {})
    .map(([code, r]) => `<li><b>${esc(code)}</b> ${esc(r.description ?? "")}</li>`)
    .join("");
  return `<section class="op"><h3><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span> <code>${esc(path)}</code></h3>
<p>${esc(op.summary ?? "")}</p>${params ? `<p>Parameters: ${params}</p>` : ""}${body}<ul>${responses}</ul></section>`;
}

export function docsRoutes(getDoc: () => unknown) {
  return new Hono().get("/docs", (c) => {
    const doc = getDoc() as Doc;
    const ops = Object.entries(doc.paths ?? {}).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => renderOperation(method, path, op)),
    );
    c.header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${doc.info?.title ?? "API"} reference</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}
.op{border-top:1px solid #ddd;padding:.5em 0}.m{font:bold 12px monospace;padding:2px 6px;border-radius:3px;color:#fff;background:#555}
.get{background:#2b7}.post{background:#27b}.put{background:#b72}.delete{background:#b33}pre{background:#f6f6f6;padding:.5em;overflow:auto}</style>
</head><body><h1>${doc.info?.title ?? "API"} <small>v${doc.info?.version ?? ""}</small></h1>
<p>${doc.info?.description ?? ""}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>
${raw(ops.join("\n"))}</body></html>`);
  });
}
