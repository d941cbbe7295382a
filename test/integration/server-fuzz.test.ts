/**
 * Browser mode under hostile WebSocket traffic (issue 12 item 3): malformed, oversize and
 * partial frames, a flood, a client that drips bytes and one that never reads. Each bad
 * connection is closed with the RFC 6455 code for its fault and one log line; afterwards the
 * server still answers a valid request and a job started before the fuzzing finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createLabBackend, type LabBackend } from '../../src/core/backend';
import { startServer, type RunningServer } from '../../src/server/index';

let work: string;
let backend: LabBackend;
let server: RunningServer;
const logLines: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nmlab-fuzz-'));
  const renderer = join(work, 'renderer');
  await mkdir(renderer, { recursive: true });
  await writeFile(join(renderer, 'index.html'), '<!doctype html><title>fuzz</title>');
  backend = createLabBackend({ home: join(work, 'home') });
  server = await startServer({
    rendererDir: renderer,
    backend,
    log: (line) => logLines.push(line),
    // Low enough to reach in a test; the defaults are 100/s, burst 200, 64 in flight, 16 MiB.
    socketLimits: { ratePerSecond: 50, burst: 60, maxInFlight: 64, maxBufferedBytes: 256 << 10 },
  });
});

afterAll(async () => {
  await server?.close();
  await backend?.dispose();
  await rm(work, { recursive: true, force: true });
});

/** A raw TCP connection that has completed the WebSocket handshake. */
interface Raw {
  sock: Socket;
  /** Bytes received after the handshake. */
  received: () => Buffer;
  closed: Promise<void>;
}

function rawConnect(): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(server.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve({ sock, received: () => buf, closed });
      }
    });
    sock.write(
      [
        `GET /api?token=${server.token} HTTP/1.1`,
        `Host: 127.0.0.1:${server.port}`,
        `Origin: http://127.0.0.1:${server.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
  });
}

interface FrameOpts {
  fin?: boolean;
  rsv1?: boolean;
  opcode?: number;
  mask?: boolean;
  /** Length written in the header (defaults to the payload's). */
  claimed?: number;
}

function frame(payload: Buffer, o: FrameOpts = {}): Buffer {
  const { fin = true, rsv1 = false, opcode = 1, mask = true } = o;
  const len = o.claimed ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode];
  const m = mask ? 0x80 : 0;
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 255, (len >>> 16) & 255, (len >>> 8) & 255, len & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** The close code of the first close frame the server sent, or null. */
function closeCode(buf: Buffer): number | null {
  let off = 0;
  while (off + 2 <= buf.length) {
    const opcode = buf[off] & 0x0f;
    let len = buf[off + 1] & 0x7f;
    let p = off + 2;
    if (len === 126) {
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    if (opcode === 8) return len >= 2 ? buf.readUInt16BE(p) : null;
    off = p + len;
  }
  return null;
}

const request = (id: number, channel = 'nmlab:projects.listRecent') => Buffer.from(JSON.stringify({ id, channel, payload: {} }));

/** Send `bytes` on a fresh connection; resolve with the close code once the server closes it. */
async function fuzz(bytes: Buffer | Buffer[]): Promise<number | null> {
  const raw = await rawConnect();
  for (const b of Array.isArray(bytes) ? bytes : [bytes]) raw.sock.write(b);
  await Promise.race([raw.closed, new Promise((r) => setTimeout(r, 5000))]);
  raw.sock.destroy();
  return closeCode(raw.received());
}

/** A well-behaved client call on a fresh connection. */
async function validCall(): Promise<unknown> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, { headers: { Origin: `http://127.0.0.1:${server.port}` } });
  await new Promise((r, j) => {
    ws.once('open', r);
    ws.once('error', j);
  });
  const answer = await new Promise<{ id: number; ok: boolean; result?: unknown }>((r) => {
    ws.once('message', (d) => r(JSON.parse(d.toString()) as { id: number; ok: boolean }));
    ws.send(request(7).toString());
  });
  ws.close();
  return answer;
}

describe('browser mode survives hostile WebSocket clients', () => {
  const counts = { tried: 0, closedWithCode: 0 };

  it('closes each bad connection with the right code, logs one line, and keeps serving and running jobs', async () => {
    const job = (await backend.handlers.jobs.start({ spec: { kind: 'selftest', steps: 30, intervalMs: 100 } })) as { id: string };
    const cases: Array<[string, Buffer | Buffer[], number]> = [
      ['a header claiming 2 MB', frame(Buffer.alloc(0), { claimed: 2 << 20 }), 1009],
      ['a message over 1 MiB', frame(Buffer.alloc((1 << 20) + 10, 0x20)), 1009],
      ['a 1 MiB message in two fragments', [frame(Buffer.alloc(600_000, 0x20), { fin: false }), frame(Buffer.alloc(600_000, 0x20), { opcode: 0 })], 1009],
      ['invalid UTF-8 in a text frame', frame(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), 1007],
      ['an unmasked client frame', frame(request(1), { mask: false }), 1002],
      ['reserved opcode 3', frame(request(1), { opcode: 3 }), 1002],
      ['RSV1 without permessage-deflate', frame(request(1), { rsv1: true }), 1002],
      ['a continuation with nothing to continue', frame(request(1), { opcode: 0 }), 1002],
      ['a ping longer than 125 bytes', frame(Buffer.alloc(200), { opcode: 9 }), 1002],
      ['a fragmented ping', frame(Buffer.alloc(4), { opcode: 9, fin: false }), 1002],
      ['a close frame with a 1-byte body', frame(Buffer.from([3]), { opcode: 8 }), 1002],
      ['a close frame with invalid code 999', frame(Buffer.from([0x03, 0xe7]), { opcode: 8 }), 1002],
      ['random bytes', Buffer.from('ffffffffffffffffffff', 'hex'), 1002],
      ['a flood of 100 requests', Array.from({ length: 100 }, (_, i) => frame(request(i))), 1008],
    ];
    const got: Array<[string, number | null]> = [];
    for (const [name, bytes, want] of cases) {
      const before = logLines.length;
      const code = await fuzz(bytes);
      counts.tried++;
      got.push([name, code]);
      expect(code, name).toBe(want);
      if (code === want) counts.closedWithCode++;
      // One log line per bad connection, naming the client and the close code.
      const lines = logLines.slice(before);
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toMatch(new RegExp(`^WebSocket 127\\.0\\.0\\.1:\\d+: closed \\(${want}\\)`));
    }

    // Partial frames: a half header, then the client goes away; a half body left hanging.
    for (const partial of [frame(request(1)).subarray(0, 1), frame(request(1)).subarray(0, 9)]) {
      const raw = await rawConnect();
      raw.sock.write(partial);
      await new Promise((r) => setTimeout(r, 50));
      raw.sock.destroy();
      counts.tried++;
    }

    // A client that drips one valid frame a byte at a time is answered, and others are not held up.
    const drip = await rawConnect();
    const whole = frame(request(42));
    const dripping = (async () => {
      for (const b of whole) {
        drip.sock.write(Buffer.of(b));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    expect(await validCall()).toMatchObject({ id: 7, ok: true });
    await dripping;
    const deadline = Date.now() + 5000;
    while (!drip.received().toString().includes('"id":42') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(drip.received().toString()).toMatch(/"id":42,"ok":true/);
    drip.sock.destroy();
    counts.tried++;

    // A client that sends requests but never reads its answers does not hold up anyone else.
    const sleeper = await rawConnect();
    sleeper.sock.pause();
    for (let i = 0; i < 20; i++) sleeper.sock.write(frame(request(i)));
    expect(await validCall()).toMatchObject({ id: 7, ok: true });
    sleeper.sock.destroy();
    counts.tried++;

    // The server still answers, and the job started before all this finishes.
    expect(await validCall()).toMatchObject({ id: 7, ok: true });
    const until = Date.now() + 30_000;
    let state = '';
    while (Date.now() < until) {
      state = ((await backend.handlers.jobs.get({ id: job.id })) as { state: string }).state;
      if (state !== 'running' && state !== 'queued') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(state).toBe('succeeded');
    expect(counts.closedWithCode).toBe(cases.length);
    console.log(`websocket fuzz: ${counts.tried} hostile connections, ${counts.closedWithCode} closed with the expected code, server up, job ${state}`);
  }, 60_000);
});
