/**
 * Issue 12 item 6, with `electron` stubbed (no Electron binary here): the `app://` scheme is
 * privileged, serves only files inside the renderer folder with the app's CSP, and production
 * menus have no DevTools.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const schemes: Array<{ scheme: string; privileges: Record<string, boolean> }> = [];
const protocolHandlers = new Map<string, (req: { url: string }) => Promise<Response>>();
vi.mock('electron', () => ({
  protocol: {
    registerSchemesAsPrivileged: (list: Array<{ scheme: string; privileges: Record<string, boolean> }>) => schemes.push(...list),
    handle: (scheme: string, fn: (req: { url: string }) => Promise<Response>) => protocolHandlers.set(scheme, fn),
  },
  Menu: { buildFromTemplate: (t: unknown) => t },
  app: {},
  session: {},
}));

const { APP_INDEX_URL, appFileFor, registerAppSchemePrivileges, serveAppScheme } = await import('../../src/main/appProtocol');
const { CONTENT_SECURITY_POLICY } = await import('../../src/main/security');
const { menuTemplate } = await import('../../src/main/menu');

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nmlab-app-scheme-'));
  await mkdir(join(root, 'renderer', 'assets'), { recursive: true });
  await writeFile(join(root, 'renderer', 'index.html'), '<!doctype html><title>NMLab</title>');
  await writeFile(join(root, 'renderer', 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(root, 'secret.txt'), 'outside');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('app:// scheme', () => {
  it('is registered as a standard, secure scheme', () => {
    registerAppSchemePrivileges();
    expect(schemes).toEqual([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    expect(APP_INDEX_URL).toBe('app://nmlab/index.html');
  });

  it('maps only app://nmlab/ paths inside the renderer folder', () => {
    const dir = join(root, 'renderer');
    expect(appFileFor('app://nmlab/index.html', dir)).toBe(join(dir, 'index.html'));
    expect(appFileFor('app://nmlab/', dir)).toBe(join(dir, 'index.html'));
    expect(appFileFor('app://nmlab/assets/app.js?v=1#x', dir)).toBe(join(dir, 'assets', 'app.js'));
    expect(appFileFor('app://nmlab/../secret.txt', dir)).toBe(join(dir, 'secret.txt')); // URL parsing clamps at the root
    expect(appFileFor('app://nmlab/%2e%2e/secret.txt', dir)).toBe(join(dir, 'secret.txt'));
    expect(appFileFor('app://nmlab/..%2fsecret.txt', dir)).toBeNull();
    expect(appFileFor('app://nmlab/%2e%2e%5csecret.txt', dir)).toBeNull();
    expect(appFileFor('app://nmlab/a%00b', dir)).toBeNull();
    expect(appFileFor('app://other/index.html', dir)).toBeNull();
    expect(appFileFor('app://nmlab:81/index.html', dir)).toBeNull();
    expect(appFileFor('file:///etc/passwd', dir)).toBeNull();
  });

  it('answers with the file, its type, the CSP and nosniff; 404 outside or missing', async () => {
    serveAppScheme(join(root, 'renderer'));
    const handle = protocolHandlers.get('app')!;
    const page = await handle({ url: 'app://nmlab/index.html' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await page.text()).toBe('<!doctype html><title>NMLab</title>');
    expect((await handle({ url: 'app://nmlab/assets/app.js' })).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    for (const url of ['app://nmlab/..%2fsecret.txt', 'app://nmlab/missing.js', 'app://nmlab/assets', 'app://evil/index.html']) {
      const r = await handle({ url });
      expect(r.status, url).toBe(404);
      expect(r.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    }
  });
});

describe('menu', () => {
  const roles = (t: ReturnType<typeof menuTemplate>): string[] =>
    t.flatMap((m) => [m.role ?? '', ...(Array.isArray(m.submenu) ? m.submenu.map((i) => String(i.role ?? i.label ?? '')) : [])]);
  it('has no DevTools in production and has them in development', () => {
    expect(roles(menuTemplate(() => undefined, { devTools: false }))).not.toContain('toggleDevTools');
    expect(roles(menuTemplate(() => undefined, { devTools: true }))).toContain('toggleDevTools');
  });
});
