// The layer check (scripts/check-layers.mjs) must fail on an upward import and on a cycle; CI runs
// it on the real tree through `npm run lint`.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without types
import { check } from '../../scripts/check-layers.mjs';

const made: string[] = [];
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'nmlab-layers-'));
  made.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}
afterEach(() => {
  for (const r of made.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('check-layers', () => {
  it('accepts downward imports', () => {
    const root = tree({
      'src/core/arrays/a.ts': 'export const a = 1;\n',
      'src/core/spectrum/s.ts': "import { a } from '../arrays/a';\nexport const s = a;\n",
      'src/core/runs/r.ts': "import { s } from '../spectrum/s';\nexport const r = s;\n",
    });
    expect(check(root)).toEqual([]);
  });

  it('rejects an upward import, naming both files and floors', () => {
    const root = tree({
      'src/core/arrays/a.ts': "import { r } from '../runs/r';\nexport const a = r;\n",
      'src/core/runs/r.ts': 'export const r = 1;\n',
    });
    const problems: string[] = check(root);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('src/core/arrays/a.ts imports src/core/runs/r.ts');
    expect(problems[0]).toContain('upward import from base (arrays) to orchestration (runs)');
  });

  it('rejects file cycles and folder cycles on one floor, dynamic imports included', () => {
    const root = tree({
      'src/core/jobs/j.ts': "export const load = () => import('../demo/d');\n",
      'src/core/demo/d.ts': "import { load } from '../jobs/j';\nexport const d = load;\n",
    });
    const problems: string[] = check(root);
    expect(problems).toContain('folder cycle in src/core: demo ↔ jobs');
    expect(problems.some((p) => p.startsWith('import cycle: src/core/demo/d.ts → src/core/jobs/j.ts'))).toBe(true);
  });

  it('lets a type-only import close a file loop (erased at compile time) but not a folder loop', () => {
    const files = {
      'src/core/pretrain/train.ts': "export interface Set { n: number }\nexport const load = () => import('./ort');\n",
      'src/core/pretrain/ort.ts': "import type { Set } from './train';\nexport const rows = (s: Set) => s.n;\n",
    };
    expect(check(tree(files))).toEqual([]);
    const runtime = { ...files, 'src/core/pretrain/ort.ts': "import { load } from './train';\nexport const again = load;\n" };
    expect(check(tree(runtime))).toEqual(['import cycle: src/core/pretrain/ort.ts → src/core/pretrain/train.ts']);
    const folders = tree({
      'src/core/tuning/t.ts': "import type { P } from '../pretrain/p';\nexport type T = P;\n",
      'src/core/pretrain/p.ts': "import type { T } from '../tuning/t';\nexport type P = T | number;\n",
    });
    expect(check(folders)).toEqual(['folder cycle in src/core: pretrain ↔ tuning']);
  });

  it('holds on this repository', () => {
    expect(check(resolve(__dirname, '../..'))).toEqual([]);
  });

  it('ignores imports inside comments and type-free strings', () => {
    const root = tree({
      'src/core/arrays/a.ts': "// import { r } from '../runs/r';\n/* import('../runs/r') */\nexport const a = 'from ../runs/r';\n",
      'src/core/runs/r.ts': 'export const r = 1;\n',
    });
    expect(check(root)).toEqual([]);
  });
});
