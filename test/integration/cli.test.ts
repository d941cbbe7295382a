import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentReport } from '../../src/shared/contract/environment';
import { ProjectInfo, RecentProject } from '../../src/shared/contract/projects';

const root = join(__dirname, '..', '..');
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-cli-'));
  // bin/nmlab.mjs prefers the bundles in out/node: build them from the current sources so the
  // test exercises exactly this checkout (the build also proves `npm run build:node` works).
  execFileSync(process.execPath, [join(root, 'scripts', 'build-node.mjs')], { cwd: root, stdio: 'pipe' });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function nmlab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'nmlab.mjs'), ...args], {
    cwd: tmp,
    env: { ...process.env, NMLAB_HOME: join(tmp, 'home') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('nmlab CLI (built bundles)', () => {
  it('doctor --json prints one JSON report with the chosen backend and a measured GFLOP/s', () => {
    const r = nmlab('doctor', '--json', '--size', '64');
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    const report = EnvironmentReport.parse(JSON.parse(r.stdout));
    expect(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).toContain(report.tfjs.chosen);
    expect(report.matmul.backend).toBe(report.tfjs.chosen);
    expect(report.matmul.size).toBe(64);
    expect(report.matmul.gflops).toBeGreaterThan(0);
    expect(report.matmul.gflops).toBeCloseTo((report.matmul.repetitions! * 2 * 64 ** 3) / report.matmul.seconds / 1e9, 6);
  });

  it('doctor without --json prints a table naming the chosen backend', () => {
    const r = nmlab('doctor', '--size', '32');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/chosen backend: (tensorflow-gpu|tensorflow|wasm|cpu)/);
    expect(r.stdout).toMatch(/matmul\s+32×32 float32 on \S+: \d+\.\d\d GFLOP\/s/);
  });

  it.each([
    [['doctor', '--bogus']],
    [['doctor', '--size', 'abc']],
    [['doctor', '--size', '8']],
    [['project']],
    [['project', 'frobnicate', 'x']],
    [['project', 'create', 'x']],
    [['project', 'list', 'extra']],
    [['no-such-verb']],
  ])('exits 2 with usage on bad arguments: %j', (args) => {
    const r = nmlab(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nmlab/);
    expect(r.stdout).toBe('');
  });

  it('creates, renames, lists and reopens a project with --json', async () => {
    const dir = join(tmp, 'proj');
    const created = ProjectInfo.parse(JSON.parse(nmlab('project', 'create', 'proj', '--name', 'CLI project', '--json').stdout));
    expect(created.dir).toBe(dir);
    expect(JSON.parse(await readFile(join(dir, 'nmlab.json'), 'utf8')).name).toBe('CLI project');

    const renamed = ProjectInfo.parse(JSON.parse(nmlab('project', 'rename', dir, '--name', 'Renamed', '--json').stdout));
    expect(renamed.manifest.name).toBe('Renamed');
    const listed = RecentProject.array().parse(JSON.parse(nmlab('project', 'list', '--json').stdout));
    expect(listed.map((p) => [p.dir, p.name, p.available])).toEqual([[dir, 'Renamed', true]]);
    expect(ProjectInfo.parse(JSON.parse(nmlab('project', 'open', dir, '--json').stdout)).manifest.name).toBe('Renamed');

    // A corrupt manifest: exit 1 and a message naming the file.
    await writeFile(join(dir, 'nmlab.json'), '{ broken');
    const bad = nmlab('project', 'open', dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(join(dir, 'nmlab.json'));
  });
});
