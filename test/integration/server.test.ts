/**
 * Browser mode end to end at the protocol level: the token gate on the page, the WebSocket's
 * token and Origin checks, static path safety, and that a call through the WebSocket gives
 * the same answer as the same call made directly on the backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { createDirectClient, createLabBackend, type LabBackend } from '../../src/core/backend';
import { startServer, type RunningServer } from '../../src/server/index';

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Try to open a WebSocket; resolves with the open socket or the HTTP status it was refused with. */
function connect(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket } | { refused: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ refused: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

type Envelope = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { name: string; code: string; message: string } };
type Pushed = { event: string; payload: { type: string; job?: { id: string; state: string; result?: unknown } } };

/** A minimal protocol client for the test: numbered requests, answers matched by id. */
function rpc(ws: WebSocket) {
  let next = 1;
  const pending = new Map<number, (e: Envelope) => void>();
  const pushed: Pushed[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as Envelope | Pushed;
    if ('event' in msg) pushed.push(msg);
    else pending.get(msg.id)?.(msg);
  });
  return {
    pushed,
    call(channel: string, payload: unknown): Promise<Envelope> {
      const id = next++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, channel, payload }));
      });
    },
  };
}

let work: string;
let backend: LabBackend;
let server: RunningServer;
let origin: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nmlab-server-'));
  const renderer = join(work, 'renderer');
  await mkdir(join(renderer, 'assets'), { recursive: true });
  await writeFile(join(renderer, 'index.html'), '<!doctype html><title>NMLab test page</title>');
  await writeFile(join(renderer, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(work, 'secret.txt'), 'outside the renderer');
  backend = createLabBackend({ home: join(work, 'home') });
  server = await startServer({ rendererDir: renderer, backend });
  origin = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.close();
  await backend?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe('nmlab serve: page access', () => {
  it('binds to 127.0.0.1 with a 32-byte random token in the URL', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(Buffer.from(server.token, 'base64url')).toHaveLength(32);
    expect(server.url).toBe(`${origin}/?token=${server.token}`);
  });

  it('refuses the page without a token (401) and with a wrong one (403)', async () => {
    const none = await get(server.port, '/');
    expect(none.status).toBe(401);
    expect(none.body).not.toContain('NMLab test page');
    const wrong = await get(server.port, '/?token=' + 'x'.repeat(43));
    expect(wrong.status).toBe(403);
    const asset = await get(server.port, '/assets/app.js');
    expect(asset.status).toBe(401);
  });

  it('trades the token for an HttpOnly SameSite=Strict cookie, then serves the page with strict headers', async () => {
    const first = await get(server.port, `/?token=${server.token}`);
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const pair = cookie.split(';')[0];

    const page = await get(server.port, '/', { Cookie: pair });
    expect(page.status).toBe(200);
    expect(page.body).toContain('NMLab test page');
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(String(page.headers['content-security-policy'])).toContain("frame-ancestors 'none'");

    const asset = await get(server.port, '/assets/app.js', { Cookie: pair });
    expect(asset.status).toBe(200);
    expect(asset.body).toBe('console.log(1)');
  });

  it('redirects only to a path on this server', async () => {
    const r = await get(server.port, `////evil.example/?token=${server.token}`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
  });

  it('never serves a file outside the renderer folder', async () => {
    const auth = { Cookie: `nmlab_token_${server.port}=${server.token}` };
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%00index.html']) {
      const r = await get(server.port, path, auth);
      expect([400, 404], path).toContain(r.status);
      expect(r.body).not.toContain('outside the renderer');
    }
  });

  it('refuses a foreign Host header (DNS rebinding)', async () => {
    const r = await get(server.port, `/?token=${server.token}`, { Host: `evil.example:${server.port}` });
    expect(r.status).toBe(403);
  });
});

describe('nmlab serve: WebSocket API', () => {
  const api = () => `ws://127.0.0.1:${server.port}/api`;

  it('refuses a WebSocket without the token', async () => {
    expect(await connect(api(), { Origin: origin })).toEqual({ refused: 401 });
    expect(await connect(`${api()}?token=wrong`, { Origin: origin })).toEqual({ refused: 401 });
  });

  it('refuses a WebSocket from another Origin, or with none, even with the token', async () => {
    expect(await connect(`${api()}?token=${server.token}`, { Origin: 'http://evil.example' })).toEqual({ refused: 403 });
    expect(await connect(`${api()}?token=${server.token}`, { Origin: `http://127.0.0.1:${server.port + 1}` })).toEqual({ refused: 403 });
    expect(await connect(`${api()}?token=${server.token}`, {})).toEqual({ refused: 403 });
  });

  it('refuses a WebSocket through a foreign Host name even when Origin matches it (DNS rebinding)', async () => {
    const evil = `evil.example:${server.port}`;
    expect(await connect(`${api()}?token=${server.token}`, { Host: evil, Origin: `http://${evil}` })).toEqual({ refused: 403 });
  });

  it('accepts the session cookie and gives the same answers as direct calls', async () => {
    const opened = await connect(api(), { Origin: origin, Cookie: `nmlab_token_${server.port}=${server.token}` });
    if (!('ws' in opened)) throw new Error(`refused with ${opened.refused}`);
    const client = rpc(opened.ws);
    const direct = createDirectClient(backend);
    try {
      const dir = join(work, 'projects', 'first');
      const created = await client.call('nmlab:projects.create', { dir, name: 'First study' });
      if (!created.ok) throw new Error(created.error.message);
      const onDisk = JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')) as { name: string };
      expect(onDisk.name).toBe('First study');
      // The same project read directly equals what the socket returned.
      expect(created.result).toEqual(await direct.projects.open({ dir }));

      const recentWs = await client.call('nmlab:projects.listRecent', {});
      expect(recentWs.ok && recentWs.result).toEqual(await direct.projects.listRecent({}));

      // Validation errors are the same error, with the same code, on both transports.
      const badWs = await client.call('nmlab:projects.create', { dir: '', name: 'x' });
      const badDirect = await direct.projects.create({ dir: '', name: 'x' }).then(
        () => null,
        (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
      );
      expect(badWs.ok).toBe(false);
      if (!badWs.ok) expect({ code: badWs.error.code, message: badWs.error.message }).toEqual(badDirect);

      const unknown = await client.call('nmlab:projects.destroyEverything', {});
      expect(!unknown.ok && unknown.error.code).toBe('BAD_REQUEST');

      const dialog = await client.call('nmlab:dialog.pickFolder', {});
      expect(!dialog.ok && dialog.error.code).toBe('UNSUPPORTED');
    } finally {
      opened.ws.close();
    }
  });

  it('pushes job events to the socket while a job runs', async () => {
    const opened = await connect(`${api()}?token=${server.token}`, { Origin: origin });
    if (!('ws' in opened)) throw new Error(`refused with ${opened.refused}`);
    const client = rpc(opened.ws);
    try {
      const started = await client.call('nmlab:jobs.start', { spec: { kind: 'selftest', steps: 3, intervalMs: 10 } });
      if (!started.ok) throw new Error(started.error.message);
      const id = (started.result as { id: string }).id;
      const deadline = Date.now() + 60_000;
      const finished = () => client.pushed.find((p) => p.payload.type === 'state' && p.payload.job?.id === id && p.payload.job.state === 'succeeded');
      while (!finished() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(finished(), JSON.stringify(client.pushed)).toBeDefined();
      expect(client.pushed.every((p) => p.event === 'nmlab:event.job')).toBe(true);
      expect(client.pushed.some((p) => p.payload.type === 'progress')).toBe(true);
      const got = await client.call('nmlab:jobs.get', { id });
      expect(got.ok && got.result).toEqual(await createDirectClient(backend).jobs.get({ id }));
    } finally {
      opened.ws.close();
    }
  });
});
