/**
 * A study's job graph (issue 9): the spec expanded, in a project, into stages with
 * dependencies —
 *
 *   noise (γ labels) → pretrain (CNN + ONNX export → backbone) ┐
 *   domains (corruptions of a task's test rows) ───────────────┼→ features (backbone × dataset,
 *                                                              │   the project's feature cache)
 *                                                              ├→ spectrum (F on every set)
 *                                                              └→ tune → aggregate
 *
 * Downstream label noise η is no stage of its own: each tune job draws it over its training
 * labels (and records the realised flip rate), so its seed nests with the fit's.
 * One tune job per backbone × ID task × method × fraction × seed × η: it is trained once and
 * evaluated on the ID test and on every target of the OOD tasks whose source is that task, so
 * no model is trained twice. Derived datasets and pre-trained backbones get ids that hash what
 * makes them, so studies asking for the same one share it (and the features cached for it).
 *
 * `expandStudy` is pure (the project is summarised in {@link ProjectFacts}); `planStudy` reads
 * the facts from the project and names every id the spec gets wrong.
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  methodLabel,
  type DatasetRows,
  type NoiseSpec,
  type StageCounts,
  type StudyJob,
  type StudyPlan,
  type StudySet,
  type StudySpec,
} from '../../shared/contract/study';
import { NmlabError } from '../../shared/errors';
import { readDatasetManifest, listDatasets } from '../datasets/store';
import { BACKBONE_FILE, BACKBONES_FOLDER, readBackboneManifest } from '../features/backbone';
import { backboneIdFor } from '../pretrain/backbone';
import { scheduleJobs } from './eta';
import { resolveInside } from '../projects/resolveInside';

/** 16 hex digits of the sha256 of a JSON value with sorted keys: ids of things made from it. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex').slice(0, 16);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** γ or η in percent for names and keys: 0.05 → "5", 0.125 → "12.5". */
export function pct(r: number): string {
  return String(Math.round(r * 1000) / 10);
}

/** A job before it has its place in the order. */
type NewJob = StudyJob extends infer J ? (J extends StudyJob ? Omit<J, 'index'> : never) : never;

/** What expansion needs to know about the project. */
export interface ProjectFacts {
  datasets: Map<string, { kind: 'images' | 'features'; hasSplit: boolean; classes: number; domains?: string[] }>;
  /** Backbone id → γ recorded in its metadata (null when none is). */
  backbones: Map<string, { gamma: number | null }>;
}

/** A dataset id made from a parent's id and a hash of what derives it (≤ 80 characters, lower case). */
function derivedId(parent: string, tag: string, what: unknown): string {
  return `${parent.slice(0, 48)}-${tag}-${hashOf(what).slice(0, 8)}`.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
}

interface Backbone {
  id: string;
  gamma: number | null;
  replicate: number | null;
  condition: string;
  /** Jobs that must finish before the backbone exists. */
  deps: string[];
}

/**
 * Expand a spec into its job graph. Stable: the same spec and project give the same keys in the
 * same order (by stage, then the spec's nesting order), so a resumed study finds its jobs.
 */
export function expandStudy(spec: StudySpec, facts: ProjectFacts): { jobs: StudyJob[]; notes: string[] } {
  const problems: string[] = [];
  const notes: string[] = [];
  const jobs = new Map<string, NewJob>();
  const add = (job: NewJob): string => {
    if (!jobs.has(job.key)) jobs.set(job.key, job);
    return job.key;
  };
  const needDataset = (id: string, where: string, opts: { images?: boolean; split?: boolean } = {}): void => {
    const d = facts.datasets.get(id);
    if (!d) {
      const known = [...facts.datasets.keys()];
      problems.push(`${where}: no dataset "${id}" in the project${known.length ? ` (it has ${known.slice(0, 8).join(', ')}${known.length > 8 ? ', ...' : ''})` : ' (import one with `nmlab dataset import`)'}`);
      return;
    }
    if (opts.images && d.kind !== 'images') problems.push(`${where}: dataset "${id}" holds features, not images`);
    if (opts.split && !d.hasSplit) problems.push(`${where}: dataset "${id}" has no train/test split; make one with \`nmlab dataset split ${id} --test 0.2\``);
  };
  const dup = (what: string, ids: string[], fix: string) => {
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) problems.push(`${what}: "${id}" appears twice; ${fix}`);
      seen.add(id);
    }
  };
  dup('backbones', spec.backbones.map((b) => b.id), 'list each backbone once');
  dup('tasks', [...spec.tasks, ...spec.ood, ...spec.embeddings].map((t) => t.id), 'give each task a distinct id');
  dup('methods', spec.methods.map(methodLabel), 'give each method a distinct label');

  // ---- backbones: pre-trained by the study, or from the project ----------------------------
  const backbones: Backbone[] = [];
  const p = spec.pretrain;
  if (p) {
    needDataset(p.dataset, 'pretrain.dataset', { images: true, split: true });
    const setting = hashOf({ d: p.dataset, n: p.noise, a: p.architecture, r: p.recipe }).slice(0, 8);
    for (const gamma of [...new Set(p.gammas)]) {
      const noise: NoiseSpec = p.noise;
      const noisy = derivedId(p.dataset, `${noise.type === 'symmetric' ? 'sym' : 'asym'}${pct(gamma).replace('.', 'p')}`, { noise, gamma });
      const noiseKey = add({
        key: `noise/${noisy}`,
        deps: [],
        title: `noisy labels γ=${pct(gamma)} % (${noise.type}) of ${p.dataset}`,
        stage: 'noise',
        dataset: p.dataset,
        split: 'train',
        ratio: gamma,
        noise,
        output: noisy,
      });
      for (const seed of [...new Set(p.seeds)]) {
        const id = backboneIdFor(gamma, `${setting}-r${seed}`);
        const key = add({
          key: `pretrain/${id}`,
          deps: [noiseKey],
          title: `pre-train γ=${pct(gamma)} % replicate ${seed}`,
          stage: 'pretrain',
          dataset: p.dataset,
          noisyDataset: noisy,
          gamma,
          noise,
          seed,
          arch: p.architecture,
          hyper: p.recipe,
          backbone: id,
        });
        backbones.push({ id, gamma, replicate: seed, condition: backboneIdFor(gamma, setting), deps: [key] });
      }
    }
  }
  const onlyEmbeddings = spec.tasks.length === 0;
  for (const [i, b] of spec.backbones.entries()) {
    const known = facts.backbones.get(b.id);
    if (!known && !onlyEmbeddings) {
      const ids = [...facts.backbones.keys()];
      problems.push(`backbones[${i}].id: no backbone "${b.id}" in the project${ids.length ? ` (it has ${ids.slice(0, 8).join(', ')})` : ' (import one with `nmlab project import-backbone DIR MODEL.onnx`)'}`);
    }
    const gamma = b.gamma ?? known?.gamma ?? null;
    if (gamma === null && !onlyEmbeddings) notes.push(`backbone "${b.id}": no γ given and none recorded in its metadata; its γ is unknown`);
    backbones.push({ id: b.id, gamma, replicate: null, condition: b.id, deps: [] });
  }

  // ---- tasks: sets, derived datasets, features ----------------------------------------------
  const featureKey = (b: Backbone, dataset: string, dsDeps: string[]): string =>
    add({ key: `features/${b.id}/${dataset}`, deps: [...b.deps, ...dsDeps], title: `features of ${dataset} through ${b.id}`, stage: 'features', backbone: b.id, dataset });
  const tunes: string[] = [];
  const methods = spec.methods.map((m) => ({ m, label: methodLabel(m) }));
  type Method = (typeof methods)[number];
  const addTune = (
    b: Backbone,
    task: string,
    { m, label }: Method,
    at: { fraction: number; seed: number; eta: number },
    sets: { train: StudySet; test: StudySet | null; targets: StudySet[]; oodTasks: string[] },
    deps: string[],
    what: string,
  ): void => {
    tunes.push(
      add({
        key: `tune/${b.id}/${task}/${label}/f${at.fraction}/s${at.seed}/eta${pct(at.eta)}`,
        deps: [...new Set(deps)],
        title: `${label} on ${what} with ${b.id}, fraction ${at.fraction}, seed ${at.seed}${at.eta ? `, η=${pct(at.eta)} %` : ''}`,
        stage: 'tune',
        backbone: b.id,
        gamma: b.gamma,
        replicate: b.replicate,
        condition: b.condition,
        task,
        method: m.method,
        // The column label carries η, so each η is its own cell in the comparison.
        label: at.eta > 0 ? `${label}-eta${pct(at.eta)}` : label,
        preset: m.preset,
        // η is drawn inside the fit (the tuning use case records the realised flip rate).
        params: { ...spec.defaults, ...m.params, ...(at.eta > 0 ? { downstreamNoise: { eta: at.eta, ...spec.etaNoise } } : {}) },
        ...at,
        ...sets,
      }),
    );
  };
  const fractions = [...new Set(spec.fractions)];
  const seeds = [...new Set(spec.seeds)];
  const etas = [...new Set(spec.eta)];
  const taskIds = new Set(spec.tasks.map((t) => t.id));
  for (const [oi, o] of spec.ood.entries()) {
    if (!taskIds.has(o.source)) problems.push(`ood[${oi}].source: no ID task "${o.source}" under "tasks"${spec.tasks.length ? ` (there are ${spec.tasks.map((t) => t.id).join(', ')})` : ''}; an OOD task's source is an ID task's training set`);
  }
  for (const [ti, t] of spec.tasks.entries()) {
    needDataset(t.dataset, `tasks[${ti}].dataset`, { split: t.train !== 'all' || t.test !== 'all' });
    if (t.train === t.test && t.train !== 'all') problems.push(`tasks[${ti}]: train and test are both the "${t.train}" split; test on held-out rows`);
    // OOD targets of this task: (dataset rows, the derived dataset's job when there is one).
    const targets: Array<{ set: DatasetRows; deps: string[]; task: string }> = [];
    for (const [oi, o] of spec.ood.entries()) {
      if (o.source !== t.id) continue;
      for (const [ki, target] of o.targets.entries()) {
        if ('dataset' in target) {
          needDataset(target.dataset, `ood[${oi}].targets[${ki}].dataset`, { split: target.split !== 'all' });
          const domains = facts.datasets.get(target.dataset)?.domains;
          if (target.domain !== undefined && domains && !domains.includes(target.domain)) problems.push(`ood[${oi}].targets[${ki}].domain: dataset "${target.dataset}" has no domain "${target.domain}" (it has ${domains.join(', ')})`);
          const set: DatasetRows = { name: target.name ?? `${o.id}:${target.domain ?? target.dataset}`, dataset: target.dataset, split: target.split, ...(target.domain ? { domain: target.domain } : {}) };
          targets.push({ set, deps: [], task: o.id });
        } else {
          const corruptions = [{ name: target.corruption, severity: target.severity }];
          const output = derivedId(t.dataset, `${target.corruption}${target.severity}`, { d: t.dataset, s: t.test, c: corruptions });
          const key = add({
            key: `domains/${output}`,
            deps: [],
            title: `${target.corruption} (severity ${target.severity}) of ${t.dataset} ${t.test}`,
            stage: 'domains',
            dataset: t.dataset,
            split: t.test,
            corruptions,
            seed: 0,
            output,
          });
          targets.push({ set: { name: target.name ?? `${o.id}:${target.corruption}-${target.severity}`, dataset: output, split: 'all', domain: target.corruption }, deps: [key], task: o.id });
        }
      }
    }
    for (const b of backbones) {
      const base = featureKey(b, t.dataset, []);
      const targetFeatures = targets.map((x) => featureKey(b, x.set.dataset, x.deps));
      const train: DatasetRows = { name: `${t.id}:train`, dataset: t.dataset, split: t.train };
      const test: DatasetRows = { name: `${t.id}:test`, dataset: t.dataset, split: t.test };
      const sets: StudySet[] = [train, test, ...targets.map((x) => x.set)];
      add({
        key: `spectrum/${b.id}/${t.id}`,
        deps: [...new Set([base, ...targetFeatures])],
        title: `spectra of ${b.id} features on ${t.id}`,
        stage: 'spectrum',
        backbone: b.id,
        gamma: b.gamma,
        task: t.id,
        sets,
      });
      for (const method of methods) {
        for (const fraction of fractions) {
          for (const seed of seeds) {
            for (const eta of etas) {
              const sets = { train, test, targets: targets.map((x) => x.set), oodTasks: [...new Set(targets.map((x) => x.task))] };
              // ft and lora read the images through the backbone, never the feature cache.
              const whiteBox = method.m.method === 'ft' || method.m.method === 'lora';
              addTune(b, t.id, method, { fraction, seed, eta }, sets, whiteBox ? [...b.deps, ...targets.flatMap((x) => x.deps)] : [base, ...targetFeatures], t.id);
            }
          }
        }
      }
    }
  }

  // ---- escape hatch: tasks on embedding files ------------------------------------------------
  // η redraws a share of the labels file's training labels inside the fit, as on a project
  // dataset (and as \`nmlab tune --downstream-noise-eta\` does on files).
  for (const t of spec.embeddings) {
    for (const b of backbones) {
      const vars: Record<string, string> = { backbone: b.id, task: t.id, gamma: b.gamma === null ? '' : pct(b.gamma) };
      const fill = (s: string) => s.replace(/\{(backbone|task|gamma)\}/g, (_, k: string) => vars[k]);
      const src = (name: string, f: { features: string; labels: string }): StudySet => ({ name, features: fill(f.features), labels: fill(f.labels) });
      const sets = { train: src(`${t.id}:train`, t.train), test: t.test ? src(`${t.id}:test`, t.test) : null, targets: t.targets.map((x) => src(x.name, x)), oodTasks: t.targets.length ? [t.id] : [] };
      for (const method of methods) {
        for (const fraction of fractions) {
          for (const seed of seeds) {
            for (const eta of etas) addTune(b, t.id, method, { fraction, seed, eta }, sets, b.deps, `${t.id} (embedding files)`);
          }
        }
      }
    }
  }
  if (problems.length) {
    const setup = spec.setup ? `\nThe spec says to run first:\n  ${spec.setup.trim().split('\n').join('\n  ')}` : '';
    throw new NmlabError('BAD_REQUEST', `the study "${spec.name}" does not fit the project:\n  ${[...new Set(problems)].join('\n  ')}${setup}`);
  }
  add({ key: 'aggregate', deps: tunes, title: 'compare the results', stage: 'aggregate' });

  const order: StudyJob['stage'][] = ['noise', 'pretrain', 'domains', 'features', 'spectrum', 'tune', 'aggregate'];
  const sorted = [...jobs.values()].sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage));
  return { jobs: sorted.map((j, index) => ({ ...j, index }) as StudyJob), notes };
}

/** Jobs per stage. */
export function stageCounts(jobs: StudyJob[]): StageCounts {
  const c: StageCounts = { noise: 0, pretrain: 0, domains: 0, features: 0, spectrum: 0, tune: 0, aggregate: 0 };
  for (const j of jobs) c[j.stage]++;
  return c;
}

/** Whether a dataset (or the parent it derives from) has a train/test split. */
async function hasSplit(projectDir: string, id: string, depth = 0): Promise<boolean> {
  const m = await readDatasetManifest(projectDir, id);
  if (m.split) return true;
  if (m.derived && depth < 16) return hasSplit(projectDir, m.derived.parent, depth + 1);
  return false;
}

/** The project's datasets and backbones, as expansion needs them. */
export async function projectFacts(projectDir: string): Promise<ProjectFacts> {
  const datasets: ProjectFacts['datasets'] = new Map();
  for (const d of await listDatasets(projectDir)) {
    datasets.set(d.id, { kind: d.kind, hasSplit: await hasSplit(projectDir, d.id).catch(() => false), classes: d.classes, domains: d.domains });
  }
  const backbones: ProjectFacts['backbones'] = new Map();
  const root = await resolveInside(projectDir, BACKBONES_FOLDER);
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    try {
      const m = await readBackboneManifest(join(root, name, BACKBONE_FILE));
      backbones.set(m.id, { gamma: m.provenance?.noise?.ratio ?? null });
    } catch {
      /* not a backbone folder */
    }
  }
  return { datasets, backbones };
}

/**
 * Check a spec against the project and expand it, without writing anything. With `estimate`,
 * `etaSeconds` is the queue's schedule of the whole graph at those stage costs and concurrency
 * (./eta.ts); without, null.
 */
export async function planStudy(projectDir: string, spec: StudySpec, estimate?: { costs: Record<StudyJob['stage'], number>; concurrency: number }): Promise<StudyPlan> {
  const { jobs, notes } = expandStudy(spec, await projectFacts(projectDir));
  const etaSeconds = estimate
    ? scheduleJobs(
        jobs.map((j) => ({ key: j.key, seconds: estimate.costs[j.stage], deps: j.deps, state: 'pending', priority: spec.priority, order: j.index })),
        { concurrency: estimate.concurrency },
      ).makespan
    : null;
  return { jobs, stages: stageCounts(jobs), etaSeconds, notes };
}
