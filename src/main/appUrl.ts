/**
 * Which URLs are the app's own page. The IPC sender check and the navigation guard both ask
 * this: production loads the built renderer from the privileged `app://nmlab/` scheme
 * (./appProtocol.ts), `electron-vite dev` serves it over http from a local dev server.
 */
import { APP_HOST, APP_SCHEME } from './appProtocol';

export function makeAppUrlCheck(devServerUrl: string | undefined): (raw: string) => boolean {
  const devOrigin = devServerUrl ? new URL(devServerUrl).origin : null;
  return (raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return false;
    }
    if (devOrigin) return url.origin === devOrigin;
    // A custom scheme has an opaque origin in WHATWG URL, so compare its parts.
    return url.protocol === `${APP_SCHEME}:` && url.host === APP_HOST && !url.username && !url.password && (url.pathname === '/' || url.pathname === '/index.html');
  };
}
