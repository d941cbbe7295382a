/**
 * Experiments on disk: `experiments/<id>/experiment.json` (the spec and its expansion, written
 * once), `queue.json` (every job's state, replaced atomically on each change) and `lock.json`
 * (which process runs the queue). A process killed at any instant leaves both JSON files whole:
 * at worst `queue.json` is one change behind, and the runs on disk tell the rest (see
 * `recoverQueue` in ./queue.ts).
 */
import { mkdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { EXPERIMENT_SCHEMA_VERSION, ExperimentFile, ExperimentId, QueueFile, type QueueEntry } from '../../shared/contract/experiments';
import type { StudySpecInput } from '../../shared/contract/study';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';
import { readJsonChecked } from '../fs/json';
import { listFolder } from '../fs/list';
import { resolveInside } from '../projects/resolveInside';
import { fsError } from '../fs/errors';
import { requireProject } from '../projects/manifest';
import { processAlive } from '../runs/layout';
import { planStudy } from './graph';
import { parseStudySpec } from './spec';

export const EXPERIMENTS_FOLDER = 'experiments';

export async function experimentDir(projectDir: string, id: string): Promise<string> {
  const parsed = ExperimentId.safeParse(id);
  if (!parsed.success) throw new NmlabError('BAD_REQUEST', `"${id}" is not an experiment id: ${parsed.error.issues[0]?.message}`);
  return resolveInside(projectDir, join(EXPERIMENTS_FOLDER, id));
}

/** A readable id from the experiment's name, made unique in the project (`noise-study`, `noise-study-2`, …). */
export async function newExperimentId(projectDir: string, name: string): Promise<string> {
  const base =
    name
      .toLowerCase()
      .normalize('NFKD')
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'experiment';
  const taken = new Set(await listExperimentIds(projectDir));
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** The run of attempt `attempt` of job `index` of a study: what the queue, a Slurm task and `nmlab worker` all name it. */
export function studyRunId(experimentId: string, index: number, attempt: number): string {
  return `${experimentId}.j${String(index).padStart(4, '0')}.a${attempt}`;
}

/** Write a new experiment: the spec, its job graph, and a queue with every job pending. */
export async function createExperiment(projectDir: string, spec: StudySpecInput, id?: string): Promise<{ file: ExperimentFile; queue: QueueFile }> {
  requireProject(projectDir);
  const parsedSpec = parseStudySpec(spec, 'the study spec');
  // Expanding checks every project id the spec names, so a bad spec fails before anything is written.
  const { jobs } = await planStudy(projectDir, parsedSpec);
  const expId = id ?? (await newExperimentId(projectDir, parsedSpec.name));
  const dir = await experimentDir(projectDir, expId);
  if ((await readJsonChecked(join(dir, 'experiment.json'), z.unknown(), 'experiment')) !== null) {
    throw new NmlabError('ALREADY_EXISTS', `experiment "${expId}" already exists in ${projectDir}; resume it with \`nmlab experiment resume ${expId}\` or pick another id`);
  }
  const file: ExperimentFile = { schemaVersion: EXPERIMENT_SCHEMA_VERSION, id: expId, createdAt: new Date().toISOString(), spec: parsedSpec, jobs };
  const queue: QueueFile = {
    schemaVersion: EXPERIMENT_SCHEMA_VERSION,
    updatedAt: file.createdAt,
    entries: jobs.map((j) => ({ key: j.key, state: 'pending', priority: parsedSpec.priority, attempts: 0, runId: null, runIds: [], error: null, startedAt: null, endedAt: null })),
  };
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsError(err, 'create', dir);
  }
  // Queue first: an experiment.json without a queue would be unreadable, the reverse is ignored.
  await writeJsonAtomic(join(dir, 'queue.json'), queue);
  await writeJsonAtomic(join(dir, 'experiment.json'), file);
  return { file, queue };
}

export async function readExperiment(projectDir: string, id: string): Promise<ExperimentFile> {
  const dir = await experimentDir(projectDir, id);
  const file = await readJsonChecked(join(dir, 'experiment.json'), ExperimentFile, 'experiment');
  if (!file) throw new NmlabError('NOT_FOUND', `no experiment "${id}" in ${projectDir} (${join(dir, 'experiment.json')} is missing); see \`nmlab experiment list\``);
  return file;
}

/** The queue; entries missing from it (it is written before experiment.json, so only after damage) read as pending. */
export async function readQueue(projectDir: string, exp: ExperimentFile): Promise<QueueFile> {
  const dir = await experimentDir(projectDir, exp.id);
  const q = await readJsonChecked(join(dir, 'queue.json'), QueueFile, 'experiment queue');
  const byKey = new Map((q?.entries ?? []).map((e) => [e.key, e]));
  const entries: QueueEntry[] = exp.jobs.map(
    (j) => byKey.get(j.key) ?? { key: j.key, state: 'pending', priority: exp.spec.priority, attempts: 0, runId: null, runIds: [], error: null, startedAt: null, endedAt: null },
  );
  return { schemaVersion: EXPERIMENT_SCHEMA_VERSION, updatedAt: q?.updatedAt ?? exp.createdAt, entries };
}

export async function writeQueue(projectDir: string, id: string, entries: QueueEntry[]): Promise<void> {
  const dir = await experimentDir(projectDir, id);
  await writeJsonAtomic(join(dir, 'queue.json'), { schemaVersion: EXPERIMENT_SCHEMA_VERSION, updatedAt: new Date().toISOString(), entries } satisfies QueueFile);
}

export async function listExperimentIds(projectDir: string): Promise<string[]> {
  const root = await resolveInside(projectDir, EXPERIMENTS_FOLDER);
  const names = await listFolder(root);
  return names.filter((n) => ExperimentId.safeParse(n).success).sort();
}

const LockFile = z.object({ pid: z.number().int(), host: z.string(), since: z.string() });

/**
 * Who holds the experiment's queue: this process, another live process, or nobody (no lock,
 * or the holder died — a lock from another host is trusted as held).
 */
export async function lockHolder(projectDir: string, id: string): Promise<{ pid: number; host: string; self: boolean } | null> {
  const dir = await experimentDir(projectDir, id);
  const lock = await readJsonChecked(join(dir, 'lock.json'), LockFile, 'experiment lock').catch(() => null);
  if (!lock) return null;
  const sameHost = lock.host === hostname();
  if (sameHost && lock.pid === process.pid) return { pid: lock.pid, host: lock.host, self: true };
  if (sameHost && !processAlive(lock.pid)) return null;
  return { pid: lock.pid, host: lock.host, self: false };
}

/** Take the lock; refuses when another live process holds it. A stale lock is taken over. */
export async function acquireLock(projectDir: string, id: string): Promise<void> {
  const holder = await lockHolder(projectDir, id);
  if (holder && !holder.self) {
    throw new NmlabError('ALREADY_EXISTS', `experiment "${id}" is being run by process ${holder.pid} on ${holder.host}; stop it there first (or delete experiments/${id}/lock.json if that process is gone)`);
  }
  const dir = await experimentDir(projectDir, id);
  await writeJsonAtomic(join(dir, 'lock.json'), { pid: process.pid, host: hostname(), since: new Date().toISOString() });
}

export async function releaseLock(projectDir: string, id: string): Promise<void> {
  const holder = await lockHolder(projectDir, id);
  if (holder?.self) await rm(join(await experimentDir(projectDir, id), 'lock.json'), { force: true });
}
