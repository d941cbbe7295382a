/** The run store (src/core/runs): layout, status transitions, interrupted detection, id order. */
import { describe, it, expect, beforeEach } from 'vitest';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { RunStore, newRunId, STALE_MS, type RunStatusRecord } from '../../src/core/runs/store';

let project: string;
beforeEach(async () => {
  project = await mkdtemp(join(tmpdir(), 'nmlab-runs-'));
  await writeFile(join(project, 'nmlab.json'), '{}');
});

describe('RunStore', () => {
  it('refuses a folder without nmlab.json', async () => {
    const bare = await mkdtemp(join(tmpdir(), 'nmlab-bare-'));
    expect(() => new RunStore(bare)).toThrow(/not an NMLab project \(no nmlab\.json\)/);
  });

  it('writes config, metrics, log and result; succeeded only with a result', async () => {
    const store = new RunStore(project);
    const run = await store.create('tune', { params: { lr: 0.01 } });
    expect((await store.list())[0]).toMatchObject({ id: run.id, kind: 'tune', status: 'running' });
    run.metric('loss', 1, { ce: 2.5 });
    run.metric('loss', 2, { ce: 2.0 });
    await run.log('hello');
    await run.succeed({ accuracy: 0.9 });
    const files = (await readdir(run.dir)).sort();
    expect(files).toEqual(['config.json', 'log.txt', 'metrics.jsonl', 'result.json', 'status.json']);
    const lines = (await readFile(join(run.dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { series: 'loss', step: 1, values: { ce: 2.5 } },
      { series: 'loss', step: 2, values: { ce: 2.0 } },
    ]);
    expect(await readFile(join(run.dir, 'log.txt'), 'utf8')).toMatch(/Z hello\n$/);
    const config = JSON.parse(await readFile(join(run.dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ id: run.id, kind: 'tune', params: { lr: 0.01 } });
    const [listed] = await store.list();
    expect(listed.status).toBe('succeeded');
    expect(listed.stored?.endedAt).not.toBeNull();
    expect(await store.result(run.id)).toEqual({ accuracy: 0.9 });
  });

  it('records failures and cancellations with the reason', async () => {
    const store = new RunStore(project);
    const a = await store.create('tune', {});
    await a.fail(new Error('loss became NaN'));
    const b = await store.create('tune', {});
    await b.fail('stopped by user', 'cancelled');
    const list = await store.list();
    expect(list.map((r) => [r.status, r.stored?.error])).toEqual([
      ['failed', 'loss became NaN'],
      ['cancelled', 'stopped by user'],
    ]);
    expect(await store.result(a.id)).toBeNull();
  });

  it('lists a running run whose process died as interrupted (same host: pid; other host: heartbeat)', async () => {
    const store = new RunStore(project);
    const run = await store.create('tune', {});
    const statusFile = join(run.dir, 'status.json');
    const rec = JSON.parse(await readFile(statusFile, 'utf8')) as RunStatusRecord;
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(child.stdout.toString());
    await writeFile(statusFile, JSON.stringify({ ...rec, pid: deadPid }));
    expect((await store.list())[0].status).toBe('interrupted');
    // another machine, fresh heartbeat: still running; stale heartbeat: interrupted
    await writeFile(statusFile, JSON.stringify({ ...rec, host: 'elsewhere', updatedAt: new Date().toISOString() }));
    expect((await store.list())[0].status).toBe('running');
    await writeFile(statusFile, JSON.stringify({ ...rec, host: 'elsewhere', updatedAt: new Date(Date.now() - STALE_MS - 1000).toISOString() }));
    expect((await store.list())[0].status).toBe('interrupted');
    // listing never rewrites the file
    expect(JSON.parse(await readFile(statusFile, 'utf8')).status).toBe('running');
  });

  it('run ids sort by creation time', () => {
    const t = Date.UTC(2026, 10, 27, 20, 7, 3, 5);
    const ids = [newRunId(new Date(t + 1000)), newRunId(new Date(t)), newRunId(new Date(t + 1))];
    expect(ids[1]).toMatch(/^20261127-200703-005-[0-9a-f]{6}$/);
    expect([...ids].sort()).toEqual([ids[1], ids[2], ids[0]]);
  });
});
