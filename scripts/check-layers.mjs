#!/usr/bin/env node
// Layers inside src/core (STYLE.md convention 10) and no import cycles anywhere in src/.
// ESLint's no-restricted-imports cannot see where a relative import lands, so this resolves
// every import to its file and checks two rules:
//   1. a folder of src/core imports only from its own floor or below (FLOORS);
//   2. no cycle between files in src/ (type-only imports are erased at compile time, so they
//      cannot form one), and none between folders of src/core (type-only imports included).
// Usage: node scripts/check-layers.mjs [--root DIR] [--json]. Exit 1 on any violation.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** Floors of src/core, lowest first. A top-level file counts as a folder of its own name. */
export const FLOORS = [
  ['fs', 'arrays', 'linalg', 'rng', 'stats', 'paths', 'errors'],
  ['spectrum', 'noise', 'tuning', 'pretrain', 'onnx', 'images', 'tf', 'env', 'finetune'],
  ['datasets', 'features', 'backbones', 'projects'],
  ['runs', 'jobs', 'experiments', 'studies', 'demo', 'reports', 'executors'],
  ['backend'],
];
const FLOOR_NAMES = ['base', 'engine', 'data', 'orchestration', 'facade'];

const IMPORT_RE = /(?:^|[^.\w$])(?:import|export)\s*(type\s+)?(?:[\w${}\s,*]+\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const EXTENSIONS = ['.ts', '.vue', '.mts', '.js', '.mjs'];

function listFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else if (/\.(ts|vue|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec.replace(/\?.*$/, ''));
  const candidates = [base, ...EXTENSIONS.map((e) => base + e), ...EXTENSIONS.map((e) => join(base, 'index' + e))];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

/** Strips comments so that an import in a comment does not count. */
function code(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** File → files it imports; `runtime` leaves out type-only statements (`import type …`). */
export function importGraph(srcDir, { runtime = false } = {}) {
  const graph = new Map();
  for (const file of listFiles(srcDir)) {
    const deps = new Set();
    for (const m of code(readFileSync(file, 'utf8')).matchAll(IMPORT_RE)) {
      if (runtime && m[1]) continue;
      const target = resolveImport(file, m[2] ?? m[3]);
      if (target && target.startsWith(srcDir + sep)) deps.add(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Tarjan's strongly connected components; returns those with a cycle (size > 1 or a self-loop). */
export function cycles(graph) {
  let index = 0;
  const idx = new Map(), low = new Map(), stack = [], on = new Set(), out = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++; stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

function folderOf(coreDir, file) {
  const parts = relative(coreDir, file).split(sep);
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.[^.]+$/, '');
}

function floorOf(folder) {
  const i = FLOORS.findIndex((f) => f.includes(folder));
  return i;
}

export function check(root) {
  const srcDir = resolve(root, 'src');
  const coreDir = join(srcDir, 'core');
  const graph = importGraph(srcDir);
  const problems = [];
  const rel = (f) => relative(root, f);

  const folderGraph = new Map();
  for (const [file, deps] of graph) {
    if (!file.startsWith(coreDir + sep)) continue;
    const from = folderOf(coreDir, file);
    const fromFloor = floorOf(from);
    if (fromFloor < 0) problems.push(`${rel(file)}: folder src/core/${from} has no floor; add it to FLOORS in scripts/check-layers.mjs`);
    for (const dep of deps) {
      if (!dep.startsWith(coreDir + sep)) continue;
      const to = folderOf(coreDir, dep);
      if (to === from) continue;
      if (!folderGraph.has(from)) folderGraph.set(from, new Set());
      folderGraph.get(from).add(to);
      const toFloor = floorOf(to);
      if (fromFloor >= 0 && toFloor > fromFloor) {
        problems.push(`${rel(file)} imports ${rel(dep)}: upward import from ${FLOOR_NAMES[fromFloor]} (${from}) to ${FLOOR_NAMES[toFloor]} (${to})`);
      }
    }
  }
  for (const comp of cycles(folderGraph)) problems.push(`folder cycle in src/core: ${comp.join(' ↔ ')}`);
  for (const comp of cycles(importGraph(srcDir, { runtime: true }))) problems.push(`import cycle: ${comp.map(rel).join(' → ')}`);
  return problems;
}

const isMain = process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname);
if (isMain) {
  const args = process.argv.slice(2);
  const rootArg = args.indexOf('--root');
  const root = resolve(rootArg >= 0 ? args[rootArg + 1] : process.cwd());
  const problems = check(root);
  if (args.includes('--json')) console.log(JSON.stringify({ problems }, null, 2));
  else if (problems.length === 0) console.log('check-layers: src/core floors hold, no import cycles');
  else {
    console.error(`check-layers: ${problems.length} problem(s)\n` + problems.map((p) => `  - ${p}`).join('\n'));
  }
  process.exit(problems.length === 0 ? 0 : 1);
}
