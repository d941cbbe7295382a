/**
 * One tuning fit on feature files as a study (issue 9: `nmlab tune --project` is a one-job
 * study). The fit's files go under the spec's `embeddings:` escape hatch, so the graph
 * (./graph.ts) expands it to one `tune` job and the `aggregate` every study ends with; the
 * project's queue runs it like any study, and it shows in Experiments, the runs table and
 * Compare. The spec names files by project-relative paths (DESIGN §5), so a file from outside
 * the project is copied into `embeddings/` first, named by its content.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { ExperimentDetail } from '../../shared/contract/experiments';
import { StudySlug, type FeatureSource, type StudySpec } from '../../shared/contract/study';
import { TuneRunResult, type TuneOverrides, type TuneParams } from '../../shared/contract/tuning';
import { NmlabError } from '../../shared/errors';
import { fsError } from '../fs/errors';
import { requireProject } from '../projects/manifest';
import { resolveInside } from '../projects/resolveInside';
import { LOG_FILE, RESULT_FILE } from '../runs/layout';
import { readRunJson, runDir } from '../runs/files';
import { pct } from './graph';
import { parseStudySpec } from './spec';

/** Where feature files from outside a project are kept, one copy per content. */
export const EMBEDDINGS_FOLDER = 'embeddings';

/** The backbone a one-fit study names: its features come from files, not from a project backbone. */
export const ONE_FIT_BACKBONE = 'embeddings';

/** The task id of a one-fit study (job keys and set names: `fit:train`, `fit:test`). */
export const ONE_FIT_TASK = 'fit';

/** A fit's sets as files the user named (absolute paths). */
export interface OneFitFiles {
  train: FeatureSource;
  test: FeatureSource;
  targets: Array<FeatureSource & { name: string }>;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (err) {
    throw fsError(err, 'read', file);
  }
  return hash.digest('hex');
}

/**
 * The project-relative path of `file`: itself when it lies inside the project, else a copy in
 * `embeddings/<stem>.<sha256 prefix>.npy` (made once per content, written to a temporary name
 * and renamed, so a killed copy leaves no partial file under the final name).
 */
export async function projectFile(projectDir: string, file: string): Promise<string> {
  const root = resolve(projectDir);
  const abs = resolve(file);
  const rel = relative(root, abs);
  // `{backbone}`-style placeholders in a path are filled by the graph; such a name is copied.
  if (rel && !rel.startsWith('..') && !isAbsolute(rel) && !/[{}]/.test(rel)) {
    await resolveInside(root, rel);
    return rel.split(sep).join('/');
  }
  const stem = basename(abs).replace(/\.npy$/i, '').replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'features';
  const name = `${stem}.${(await sha256Of(abs)).slice(0, 16)}.npy`;
  const target = `${EMBEDDINGS_FOLDER}/${name}`;
  const dest = await resolveInside(root, target);
  if (await stat(dest).then((s) => s.isFile(), () => false)) return target;
  const dir = await resolveInside(root, EMBEDDINGS_FOLDER);
  await mkdir(dir, { recursive: true }).catch((err: unknown) => {
    throw fsError(err, 'create', dir);
  });
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // A reflink where the filesystem offers one, a copy otherwise.
    await copyFile(abs, tmp, fsConstants.COPYFILE_FICLONE);
    const h = await open(tmp, 'r+');
    await h.sync().finally(() => h.close());
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw fsError(err, 'copy', `${abs} to ${dest}`);
  }
  return target;
}

/**
 * The one-job study of a fit: `overrides` (method, preset, every flag) on the files, with the
 * seed and fraction as the study's only seed and fraction, and downstream noise η > 0 as its
 * only η (with its semantics and seed as the study's `etaNoise`). Files outside the project are copied
 * in (see {@link projectFile}). The spec is checked as any spec is; `projectDir` must be a project.
 */
export async function oneFitStudySpec(projectDir: string, overrides: TuneOverrides & { method: TuneParams['method'] }, files: OneFitFiles): Promise<StudySpec> {
  // Nothing is copied into a folder that is not a project.
  requireProject(projectDir);
  for (const t of files.targets) {
    if (!StudySlug.safeParse(t.name).success) throw new NmlabError('BAD_REQUEST', `target name "${t.name}": use letters, digits, ".", "-" and "_" (max 64), starting with a letter or digit`);
  }
  const source = async (f: FeatureSource): Promise<FeatureSource> => ({ features: await projectFile(projectDir, f.features), labels: await projectFile(projectDir, f.labels) });
  const { method, preset = 'paper', seed, fraction, downstreamNoise, ...rest } = overrides;
  // η > 0 is the study's η axis (its job key, its compare column `<method>-eta<η %>`); the graph
  // gives it back to the fit as `params.downstreamNoise`. η 0 stays a plain parameter (no axis).
  const eta = downstreamNoise && downstreamNoise.eta > 0 ? downstreamNoise : null;
  const params = downstreamNoise && !eta ? { ...rest, downstreamNoise } : rest;
  const spec = {
    name: `tune ${method}${method === 'lp' ? '' : ` (${preset})`} on ${basename(files.train.features)}${eta ? `, η ${pct(eta.eta)} %` : ''}`,
    backbones: [{ id: ONE_FIT_BACKBONE }],
    embeddings: [
      {
        id: ONE_FIT_TASK,
        train: await source(files.train),
        test: await source(files.test),
        targets: await Promise.all(files.targets.map(async (t) => ({ name: t.name, ...(await source(t)) }))),
      },
    ],
    methods: [{ method, preset, params }],
    ...(seed !== undefined ? { seeds: [seed] } : {}),
    ...(fraction !== undefined ? { fractions: [fraction] } : {}),
    ...(eta ? { eta: [eta.eta], etaNoise: { semantics: eta.semantics, seed: eta.seed } } : {}),
  };
  return parseStudySpec(spec, 'the fit as a study');
}

/** What a finished one-fit study's tune job wrote. */
export interface OneFitRun {
  runId: string;
  /** Absolute path of `runs/<runId>/`. */
  runDir: string;
  result: TuneRunResult;
  /** Warnings the fit logged (test classes the training labels never use, ...). */
  warnings: string[];
}

/** The tune job of a one-fit study, once it has succeeded: its run, result (checked) and warnings. */
export async function readOneFitRun(projectDir: string, d: ExperimentDetail): Promise<OneFitRun> {
  const job = d.jobs.find((j) => j.stage === 'tune');
  if (!job?.runId || job.state !== 'succeeded') throw new NmlabError('NOT_FOUND', `study ${d.summary.id} has no finished tuning job`);
  const dir = await runDir(projectDir, job.runId);
  const result = await readRunJson(join(dir, RESULT_FILE), TuneRunResult, 'tuning result');
  if (!result) throw new NmlabError('BAD_FILE', `run ${job.runId} succeeded but has no ${RESULT_FILE}`);
  const log = await readFile(join(dir, LOG_FILE), 'utf8').catch(() => '');
  const warnings = [...log.matchAll(/^\S+ (warning: .*)$/gm)].map((m) => m[1]);
  return { runId: job.runId, runDir: dir, result, warnings };
}
