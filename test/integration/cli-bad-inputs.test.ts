/**
 * The bad-input corpus (test/fixtures/bad-inputs, made by its make.mjs) through the built CLI
 * (issue 12 item 7): every invocation must exit 1 (2 for a usage mistake), print a message
 * that names the offending file or folder, print no stack trace, and write nothing — neither
 * into the project, nor beside the inputs, nor at --out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'bad-inputs', 'files');
const F = (name: string) => join(fixtures, name);
let tmp: string;
let home: string;
const W = (name: string) => join(tmp, name);

interface Case {
  args: string[];
  /** The path whose name the message must contain. */
  names: string;
  code?: 1 | 2;
}

const badFeatures = [
  'empty.npy', 'wrong-magic.npy', 'truncated-header.npy', 'truncated-data.npy', 'fortran-order.npy', 'big-endian.npy',
  'object-dtype.npy', 'nan.npy', 'inf.npy', 'huge-header.npy', 'trailing-bytes.npy', 'rank3.npy', 'rank1.npy', 'complex.npy',
  'header-not-dict.npy', 'negative-shape.npy', 'float16.npy', 'bool.npy', 'unicode.npy', 'zero-rows.npy', 'text-named.npy',
  'huge-shape.npy', 'a-folder.npy', 'missing.npy',
];
const badCsv = ['ragged.csv', 'text-cell.csv', 'nan-cell.csv', 'empty.csv', 'binary.csv'];
const badLabels = [
  'label-2pow40.npy', 'label-2pow32plus3.npy', 'label-2pow31m1.npy', 'label-1e6.npy', 'label-9.npy', 'label-negative.npy',
  'label-half.npy', 'label-nan.npy', 'label-2d.npy', 'label-count-6.npy', 'label-1e300.npy', 'label-trailing.npy',
];
const badIdx = ['idx-truncated.idx', 'idx-wrong-magic.idx', 'idx-float.idx', 'idx-empty.idx', 'idx-bad-gzip.idx.gz', 'idx-huge-dims.idx'];

function cases(): Case[] {
  const good = { f: F('good-features.npy'), y: F('good-labels.npy') };
  const tune = (tf: string, ty: string, extra: string[] = []) => ['tune', '--train-features', tf, '--train-labels', ty, '--test-features', good.f, '--test-labels', good.y, '--method', 'lp', '--epochs', '1', ...extra];
  const imp = (...src: string[]) => ['dataset', 'import', '--project', W('proj'), '--name', 'x', ...src];
  const out: Case[] = [];
  for (const f of [...badFeatures, ...badCsv]) out.push({ args: ['spectrum', '--features', F(f)], names: F(f) });
  for (const f of ['nan.npy', 'trailing-bytes.npy', 'a-folder.npy', 'label-2d.npy', 'zero-rows.npy']) out.push({ args: tune(F(f), good.y), names: F(f) });
  for (const y of ['label-2pow40.npy', 'label-2pow31m1.npy', 'label-1e6.npy', 'label-9.npy', 'label-count-6.npy']) out.push({ args: tune(good.f, F(y)), names: F(y) });
  for (const y of badLabels.filter((n) => n !== 'label-count-6.npy')) out.push({ args: ['noise', '--labels', F(y), '--type', 'symmetric', '--ratio', '0', '--seed', '1', '--out', W(`outdir/${y}`)], names: F(y) });
  for (const y of ['label-2pow32plus3.npy', 'label-9.npy', 'label-half.npy', 'label-count-6.npy', 'label-trailing.npy']) out.push({ args: imp('--features', good.f, '--labels', F(y)), names: F(y) });
  for (const f of [...badCsv, 'label-huge.csv']) out.push({ args: imp('--features', F(f), ...(f === 'label-huge.csv' ? ['--label-column', 'label'] : [])), names: F(f) });
  for (const i of badIdx) out.push({ args: imp('--idx-images', F(i), '--idx-labels', F('good-labels.idx')), names: F(i) });
  out.push({ args: imp('--idx-images', F('good-images.idx'), '--idx-labels', F('idx-6-labels.idx')), names: F('idx-6-labels.idx') });
  for (const d of ['images-garbage', 'images-truncated', 'images-empty']) out.push({ args: imp('--images', F(d)), names: F(d) });
  for (const i of badIdx.slice(0, 3)) out.push({ args: ['pretrain', '--idx-images', F(i), '--idx-labels', F('good-labels.idx'), '--out', W(`outdir/bb-${i}`), '--epochs', '1'], names: F(i) });
  for (const m of ['garbage.onnx', 'empty.onnx', 'backbone-bad-json', 'backbone-bad-schema', 'missing.onnx']) out.push({ args: ['features', '--backbone', F(m), '--inspect'], names: F(m) });
  for (const s of ['spec-bad-json.json', 'spec-bad-yaml.yaml', 'spec-wrong-schema.json', 'spec-empty.yaml']) out.push({ args: ['run', F(s), '--project', W('proj')], names: F(s) });
  // Paths that are the wrong kind of thing.
  out.push({ args: ['noise', '--labels', good.y, '--type', 'symmetric', '--ratio', '0.2', '--seed', '1', '--out', W('outdir')], names: W('outdir') });
  out.push({ args: ['noise', '--labels', good.y, '--type', 'symmetric', '--ratio', '0.2', '--seed', '1', '--out', W('no-such-folder/n.npy')], names: W('no-such-folder') });
  out.push({ args: ['noise', '--labels', good.y, '--type', 'symmetric', '--ratio', '0.2', '--seed', '1', '--out', W('afile/n.npy')], names: W('afile') });
  // Writers into a folder that is not a project (item 5): refused before anything is made.
  for (const p of ['plain', 'afile', 'no-such-project']) {
    out.push({ args: ['spectrum', '--features', good.f, '--project', W(p)], names: W(p) });
    out.push({ args: tune(good.f, good.y, ['--project', W(p)]), names: W(p) });
    out.push({ args: ['dataset', 'import', '--project', W(p), '--name', 'x', '--features', good.f, '--labels', good.y], names: W(p) });
    out.push({ args: ['report', '--project', W(p)], names: W(p) });
  }
  // Usage mistakes: exit 2.
  out.push({ args: imp('--features', good.f, '--labels', good.y).map((a) => (a === 'x' ? '   ' : a)), names: '--name', code: 2 });
  out.push({ args: ['noise', '--labels', good.y, '--type', 'symmetric', '--ratio', '0', '--seed', '1', '--num-classes', '2147483647', '--out', W('outdir/n.npy')], names: '--num-classes', code: 2 });
  return out;
}

/** Every path under `dir` with its size and mtime: a change anywhere shows up. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const s = await stat(p);
      out.set(p, e.isDirectory() ? 'dir' : `${s.size}@${s.mtimeMs}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

/** The CLI's environment: its own home, no debug output. */
function cliEnv(): NodeJS.ProcessEnv {
  return { ...process.env, NMLAB_HOME: home, NMLAB_DEBUG: '' };
}

function nmlab(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'nmlab.mjs'), ...args], { cwd: tmp, env: cliEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'nmlab-bad-'));
  home = await mkdtemp(join(tmpdir(), 'nmlab-bad-home-'));
  execFileSync(process.execPath, [join(root, 'scripts', 'build-node.mjs')], { cwd: root, stdio: 'pipe' });
  execFileSync(process.execPath, [join(root, 'bin', 'nmlab.mjs'), 'project', 'create', W('proj'), '--name', 'Bad inputs'], { env: { ...process.env, NMLAB_HOME: home }, stdio: 'pipe' });
  await mkdir(W('plain'));
  await mkdir(W('outdir'));
  await writeFile(W('afile'), 'a file, not a folder\n');
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

describe('bad inputs through the CLI', () => {
  it('each gives exit 1 (2 for usage) and one message naming the file, with no stack trace and nothing written', async () => {
    const list = cases();
    const before = await snapshot(tmp);
    const fixturesBefore = await snapshot(fixtures);
    const results: Array<{ c: Case; r: Awaited<ReturnType<typeof nmlab>> }> = [];
    // Three at a time: the machine is shared, and each run is a short process.
    let next = 0;
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        while (next < list.length) {
          const c = list[next++];
          results.push({ c, r: await nmlab(c.args) });
        }
      }),
    );
    const tally = { tried: results.length, clear: 0, stackTraces: 0, crashes: 0, silentChanges: 0 };
    const problems: string[] = [];
    for (const { c, r } of results) {
      const where = `nmlab ${c.args.map((a) => a.replace(fixtures + '/', '').replace(tmp + '/', '')).join(' ')}`;
      const stack = /^\s+at .+(:\d+:\d+\)?|\(native\))$/m.test(r.stderr) || /internal error/.test(r.stderr);
      if (stack) tally.stackTraces++;
      if (r.code === null || r.code > 2 || r.code === 0) tally.crashes += r.code === 0 ? 0 : 1;
      if (r.code === 0) tally.silentChanges++;
      const named = r.stderr.includes(c.names.startsWith('--') ? c.names : basename(c.names));
      const ok = r.code === (c.code ?? 1) && named && !stack && r.stdout === '';
      if (ok) tally.clear++;
      else problems.push(`${where}\n  exit ${r.code}; stderr: ${r.stderr.trim().split('\n').slice(0, 4).join(' | ')}`);
    }
    const after = await snapshot(tmp);
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p));
    tally.silentChanges += changed.length;
    console.log(`bad-input corpus: ${tally.tried} inputs tried, ${tally.clear} clear errors, ${tally.stackTraces} stack traces, ${tally.crashes} crashes, ${tally.silentChanges} silent changes`);
    expect(problems).toEqual([]);
    expect(changed, 'files written or changed by failing commands').toEqual([]);
    expect(await snapshot(fixtures)).toEqual(fixturesBefore);
    expect(tally).toMatchObject({ clear: tally.tried, stackTraces: 0, crashes: 0, silentChanges: 0 });
  }, 300_000);

  it('tune warns about test classes the training labels never use, naming both files', async () => {
    const r = await nmlab(['tune', '--train-features', F('good-features.npy'), '--train-labels', F('good-labels.npy'), '--test-features', F('good-features.npy'), '--test-labels', F('label-unseen.npy'), '--method', 'lp', '--epochs', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: ${F('label-unseen.npy')}: 2 test row(s) have class(es) 2 that never occur in ${F('good-labels.npy')}; no model trained on it can predict them`);
  }, 60_000);

  it('--debug adds the stack trace to the same message', async () => {
    const r = await nmlab(['spectrum', '--features', F('missing.npy'), '--debug']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^nmlab spectrum: cannot read ${F('missing.npy')}: it does not exist\\nNmlabError: .*\\n\\s+at `));
  }, 60_000);
});
