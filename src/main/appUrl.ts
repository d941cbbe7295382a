/**
 * Which URLs are the app's own page. The IPC sender check and the navigation guard both ask
 * this: production loads the built `out/renderer/index.html` from disk, `electron-vite dev`
 * serves it over http from a local dev server.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function makeAppUrlCheck(rendererIndex: string, devServerUrl: string | undefined): (raw: string) => boolean {
  const index = resolve(rendererIndex);
  const devOrigin = devServerUrl ? new URL(devServerUrl).origin : null;
  return (raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return false;
    }
    if (devOrigin) return url.origin === devOrigin;
    if (url.protocol !== 'file:' || url.host !== '') return false;
    try {
      return resolve(fileURLToPath(url)) === index;
    } catch {
      return false;
    }
  };
}
