// The console bundle on Node: files of console/dist/console/ (built by infra/console.sh), read on
// each request (the OS caches them; a rebuild needs no restart). consoleRoutes checks the names.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type ConsoleAssets, contentTypeOf } from "../routes/console";

export const CONSOLE_DIST = fileURLToPath(new URL("../../console/dist/console/", import.meta.url));

export function fileConsoleAssets(dir: string = CONSOLE_DIST): ConsoleAssets {
  return async (path) => {
    try {
      const buf = await readFile(`${dir}${path}`);
      return { body: new Uint8Array(buf), type: contentTypeOf(path) };
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    }
  };
}
