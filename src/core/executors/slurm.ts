/**
 * The `slurm` executor (issue 13): a study's jobs go to Slurm with sbatch — one job array per
 * stage (more where a stage exceeds Slurm's array size), `--dependency=afterok` on the arrays
 * (or tasks) its jobs depend on — and each task runs NMLab's worker for one job on a compute
 * node against the project folder, which the nodes share (./task.ts).
 *
 * The project's run files are the record of what finished. Slurm is asked only which
 * submitted tasks are still alive (`squeue`; accounting and `sacct` are not needed), so:
 *   - a task whose run says succeeded/failed/cancelled is settled from the run;
 *   - a task Slurm still lists is running (or waiting) there, whoever submitted it — a new
 *     NMLab re-attaches to it after the submitting one was killed;
 *   - a task Slurm no longer holds (neither `squeue` lists it nor `scontrol` records it in a
 *     live state) whose run never finished was lost: its run is marked interrupted, and
 *     `resume` submits it again (only it);
 *   - a task whose run was interrupted by SIGTERM while Slurm requeued it goes on as the
 *     next attempt (./task.ts requeues it).
 * Cancel marks the runs cancelled first and then calls scancel, so a task that gets the
 * SIGTERM knows not to requeue itself.
 *
 * `experiments/<id>/slurm/state.json` records the profile used and every submission;
 * the batch scripts and the tasks' output files sit beside it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { SlurmStudyState, type SlurmProfile } from '../../shared/contract/executors';
import type { ExperimentFile, QueueEntry } from '../../shared/contract/experiments';
import { NmlabError } from '../../shared/errors';
import { writeJsonAtomic } from '../fs/atomic';
import { readJsonChecked } from '../fs/json';
import { appRoot } from '../paths';
import { createRun } from '../runs/store';
import { appendRunLog, markInterrupted, readRunStatus, setRunStatus } from '../runs/files';
import { acquireLock, experimentDir, lockHolder, readExperiment, readQueue, releaseLock, studyRunId, writeQueue } from '../experiments/store';
import type { ExternalQueue } from '../experiments/service';
import { fsError } from '../fs/errors';
import { batchScript, chunkTasks, type BatchTask } from './script';
import { slurmCli, type SlurmControl } from './slurmctl';
import { studyJobRun } from './task';
import { loadProfile, parseProfile } from './profile';
import type { GraphJob } from './types';

export const SLURM_FOLDER = 'slurm';
const STATE_FILE = 'state.json';

async function slurmDir(projectDir: string, id: string): Promise<string> {
  return join(await experimentDir(projectDir, id), SLURM_FOLDER);
}

export async function readSlurmState(projectDir: string, id: string): Promise<SlurmStudyState | null> {
  return readJsonChecked(join(await slurmDir(projectDir, id), STATE_FILE), SlurmStudyState, 'Slurm state of the study');
}

async function writeSlurmState(projectDir: string, id: string, state: SlurmStudyState): Promise<void> {
  await writeJsonAtomic(join(await slurmDir(projectDir, id), STATE_FILE), state);
}

/** Whether the study runs on Slurm (its queue is then held by Slurm, not by a local process). */
export async function isSlurmStudy(projectDir: string, id: string): Promise<boolean> {
  return (await readSlurmState(projectDir, id).catch(() => null)) !== null;
}

/** The command that starts this installation of NMLab (on nodes that see the same paths). */
export function defaultNmlabCommand(): string {
  return `${JSON.stringify(process.execPath)} ${JSON.stringify(join(appRoot(), 'bin', 'nmlab.mjs'))}`;
}

/**
 * The graph as the executor sees it: each job's stage and the keys it needs. Study specs
 * without stages (one tuning job per combination) are one stage, `tune`, without edges.
 */
export function graphOf(exp: ExperimentFile): GraphJob[] {
  return exp.jobs.map((j) => ({
    key: j.key,
    index: j.index,
    stage: 'stage' in j && typeof j.stage === 'string' ? j.stage : 'tune',
    deps: 'deps' in j && Array.isArray(j.deps) ? j.deps.filter((d): d is string => typeof d === 'string') : [],
  }));
}

/** Stages in an order where every job's dependencies come in an earlier (or the same) stage. */
export function stageOrder(graph: GraphJob[]): string[] {
  const byKey = new Map(graph.map((g) => [g.key, g]));
  const stages = [...new Set(graph.map((g) => g.stage))];
  const after = new Map(stages.map((s) => [s, new Set<string>()]));
  for (const g of graph) {
    for (const d of g.deps) {
      const ds = byKey.get(d)?.stage;
      if (ds === undefined) throw new NmlabError('BAD_FILE', `job ${g.key} depends on "${d}", which the study does not have`);
      if (ds !== g.stage) after.get(g.stage)!.add(ds);
    }
  }
  const out: string[] = [];
  const visiting = new Set<string>();
  const visit = (s: string) => {
    if (out.includes(s)) return;
    if (visiting.has(s)) throw new NmlabError('BAD_FILE', `the study's stages depend on each other in a cycle through "${s}"`);
    visiting.add(s);
    for (const p of after.get(s)!) visit(p);
    visiting.delete(s);
    out.push(s);
  };
  stages.forEach(visit);
  return out;
}

export interface SlurmRunOptions {
  /** Profile in the project (slurm/profiles/NAME.yaml); default: the one the study used, else built-in defaults. */
  profileName?: string;
  /** Put interrupted and cancelled jobs back and submit them (resume); otherwise only pending ones go. */
  resume?: boolean;
  slurm?: SlurmControl;
  /** Called after every change of the queue or of the Slurm records. */
  onChange?: (entries: QueueEntry[], state: SlurmStudyState) => void;
  /** Stop waiting (the Slurm jobs keep running; a later resume re-attaches). */
  signal?: AbortSignal;
}

interface Session {
  projectDir: string;
  exp: ExperimentFile;
  entries: QueueEntry[];
  state: SlurmStudyState;
  graph: Map<string, GraphJob>;
  slurm: SlurmControl;
  opts: SlurmRunOptions;
}

/**
 * Make the study a Slurm study (from now on its queue is Slurm's) with profile `profileName`
 * of the project, or the built-in defaults. Nothing is submitted yet.
 */
export async function adoptSlurm(projectDirIn: string, id: string, profileName?: string): Promise<SlurmStudyState> {
  const projectDir = resolve(projectDirIn);
  const old = await readSlurmState(projectDir, id);
  const profile = profileName !== undefined ? await loadProfile(projectDir, profileName) : (old?.profile ?? parseProfile({}, 'the built-in Slurm profile'));
  const state: SlurmStudyState = old ? { ...old, profile, profileName: profileName ?? old.profileName } : { schemaVersion: 1, executor: 'slurm', profileName: profileName ?? null, profile, submissions: [], jobs: {} };
  const dir = await slurmDir(projectDir, id);
  await mkdir(join(dir, 'logs'), { recursive: true }).catch((err: unknown) => {
    throw fsError(err, 'create', dir);
  });
  await writeSlurmState(projectDir, id, state);
  return state;
}

/**
 * Take the study (its lock), settle what Slurm finished or lost while nobody watched, and
 * submit what is pending (with `resume`, also what was interrupted or cancelled). Resolves once
 * submitted; `done` then follows the study until none of its jobs is pending or running in
 * Slurm (or `signal` stops the following: the jobs go on there), and releases the lock.
 */
export async function startOnSlurm(projectDirIn: string, id: string, opts: SlurmRunOptions = {}): Promise<{ done: Promise<QueueEntry[]> }> {
  // Absolute: the batch scripts name it, and tasks start in another working directory.
  const projectDir = resolve(projectDirIn);
  const slurm = opts.slurm ?? slurmCli;
  await acquireLock(projectDir, id);
  let s: Session;
  try {
    const state = await adoptSlurm(projectDir, id, opts.profileName);
    const exp = await readExperiment(projectDir, id);
    const entries = (await readQueue(projectDir, exp)).entries;
    s = { projectDir, exp, entries, state, graph: new Map(graphOf(exp).map((g) => [g.key, g])), slurm, opts };
    await reconcile(s);
    if (opts.resume) {
      for (const e of s.entries) {
        if (e.state === 'interrupted' || e.state === 'cancelled') Object.assign(e, { state: 'pending', error: null, endedAt: null });
      }
    }
    await submitPending(s);
    await save(s);
  } catch (err) {
    await releaseLock(projectDir, id).catch(() => undefined);
    throw err;
  }
  return { done: follow(s) };
}

async function follow(s: Session): Promise<QueueEntry[]> {
  const { signal } = s.opts;
  try {
    while (s.entries.some((e) => e.state === 'running' || e.state === 'pending') && !signal?.aborted) {
      await sleep(s.state.profile.pollSeconds * 1000, signal);
      if (signal?.aborted) break;
      if (!(await reconcile(s))) continue;
      if (s.entries.some((e) => e.state === 'pending')) await submitPending(s);
      await save(s);
    }
    return s.entries;
  } finally {
    await releaseLock(s.projectDir, s.exp.id).catch(() => undefined);
  }
}

/** {@link startOnSlurm} and wait until it is done. */
export async function runOnSlurm(projectDir: string, id: string, opts: SlurmRunOptions = {}): Promise<QueueEntry[]> {
  return (await startOnSlurm(projectDir, id, opts)).done;
}

/** The study queue's view of Slurm (src/core/experiments/service.ts `ExternalQueue`). */
export const slurmQueue: ExternalQueue = {
  holds: isSlurmStudy,
  start: (projectDir, id, o) => startOnSlurm(projectDir, id, { resume: o.resume, signal: o.signal, onChange: () => o.onChange() }),
  cancel: async (projectDir, id) => {
    await cancelSlurmStudy(projectDir, id);
  },
  describe: async (projectDir, id) => {
    const state = await readSlurmState(projectDir, id).catch(() => null);
    if (!state) return null;
    return Object.fromEntries(Object.entries(state.jobs).map(([key, j]) => [key, { id: j.slurmId, state: j.state, reason: j.reason }]));
  },
};

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function save(s: Session): Promise<void> {
  await writeQueue(s.projectDir, s.exp.id, s.entries);
  await writeSlurmState(s.projectDir, s.exp.id, s.state);
  s.opts.onChange?.(s.entries, s.state);
}

function settle(e: QueueEntry, state: QueueEntry['state'], error: string | null): void {
  e.state = state;
  e.error = error;
  e.endedAt = new Date().toISOString();
}

/** The first dependency of `key` that has ended without succeeding (null: none has). */
function blockedBy(s: Session, key: string): QueueEntry | null {
  const byKey = new Map(s.entries.map((e) => [e.key, e]));
  const ended = ['failed', 'cancelled', 'interrupted'];
  return (s.graph.get(key)?.deps ?? []).map((d) => byKey.get(d)!).find((d) => ended.includes(d.state)) ?? null;
}

/**
 * Whether a dependency of `key` was submitted again after `key` was (Slurm job ids grow with
 * time): `key` then waited on the lost submission, and Slurm drops it with that one — sometimes
 * only after the new submission has already succeeded.
 */
function dependencyResubmitted(s: Session, key: string): boolean {
  const mine = s.state.jobs[key];
  if (!mine) return false;
  const order = (slurmId: string) => Number.parseInt(slurmId, 10);
  return (s.graph.get(key)?.deps ?? []).some((d) => {
    const dep = s.state.jobs[d];
    return dep !== undefined && order(dep.slurmId) > order(mine.slurmId);
  });
}

/** Whether every dependency of `key` has succeeded. */
function depsSucceeded(s: Session, key: string): boolean {
  const byKey = new Map(s.entries.map((e) => [e.key, e]));
  return (s.graph.get(key)?.deps ?? []).every((d) => byKey.get(d)?.state === 'succeeded');
}

/** Job states in which Slurm still holds a job (`scontrol show job`'s JobState). */
const LIVE_STATES = new Set(['PENDING', 'RUNNING', 'SUSPENDED', 'COMPLETING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'STOPPED']);

/**
 * Look at Slurm, then at the run files (in that order: a task Slurm no longer lists has
 * written all it will), and settle every `running` entry that ended. Returns whether
 * anything changed.
 */
async function reconcile(s: Session): Promise<boolean> {
  const running = s.entries.filter((e) => e.state === 'running');
  if (!running.length) return false;
  const alive = await s.slurm.queue();
  let changed = false;
  for (const e of running) {
    const rec = s.state.jobs[e.key];
    let seen = rec ? alive.get(rec.slurmId) : undefined;
    const st = e.runId ? await readRunStatus(s.projectDir, e.runId).catch(() => null) : null;
    if (st?.status === 'succeeded' || st?.status === 'failed' || st?.status === 'cancelled') {
      settle(e, st.status, st.status === 'succeeded' ? null : (st.error ?? st.status));
      // Without accounting Slurm's final word is not kept; the run says how it ended.
      if (rec) rec.state = 'ENDED';
      changed = true;
      continue;
    }
    // squeue can miss a job for a moment (one being requeued, under load): Slurm's own record of
    // it decides before the job is taken for lost.
    const record = !seen && rec ? await s.slurm.finalState(rec.slurmId) : null;
    if (record && LIVE_STATES.has(record)) seen = { state: record, reason: null };
    if (seen && rec) {
      if (st?.status === 'interrupted') {
        // SIGTERM, and the task requeued itself: its next run is the next attempt.
        e.attempts += 1;
        e.runId = studyRunId(s.exp.id, s.graph.get(e.key)!.index, e.attempts);
        e.runIds.push(e.runId);
        changed = true;
      }
      if (rec.state !== seen.state || rec.reason !== seen.reason) {
        rec.state = seen.state;
        rec.reason = seen.reason;
        changed = true;
      }
      continue;
    }
    // Slurm no longer has it and the run never finished: lost (or never started).
    const final = rec ? (record ?? 'GONE') : 'never submitted';
    if (rec) {
      rec.state = final;
      rec.reason = null;
    }
    const started = st?.status === 'interrupted' || (st?.status === 'running' && st.pid !== null);
    const blocked = !started && !depsSucceeded(s, e.key) ? blockedBy(s, e.key) : null;
    if (blocked) {
      settle(e, 'cancelled', `not run: ${blocked.key} is ${blocked.state}`);
      if (e.runId) await setRunStatus(s.projectDir, e.runId, 'cancelled', { error: e.error }).catch(() => undefined);
    } else if (!started && (!depsSucceeded(s, e.key) || dependencyResubmitted(s, e.key))) {
      // Slurm dropped it because an earlier submission of a dependency failed or was lost, and
      // that dependency has been submitted again: so is this job, after it (or at once, when
      // the new submission has already succeeded by the time Slurm drops this one).
      const why = `Slurm task ${rec?.slurmId ?? '?'} was dropped with its dependency; submitted again`;
      if (e.runId) await markInterrupted(s.projectDir, e.runId, why).catch(() => undefined);
      Object.assign(e, { state: 'pending', error: null, endedAt: null });
    } else {
      const why = `Slurm task ${rec?.slurmId ?? '?'} ended (${final}) ${started ? 'without finishing its run' : 'before it started'}`;
      settle(e, 'interrupted', why);
      if (e.runId) await markInterrupted(s.projectDir, e.runId, why).catch(() => undefined);
    }
    changed = true;
  }
  return changed;
}

/** Submit every pending entry, stage by stage, each stage after the Slurm jobs it needs. */
async function submitPending(s: Session): Promise<void> {
  const byKey = new Map(s.entries.map((e) => [e.key, e]));
  /** Slurm ids a job's dependents wait on: its array (this round) or its task (re-attached). */
  const waitOn = new Map<string, string>();
  for (const e of s.entries) if (e.state === 'running' && s.state.jobs[e.key]) waitOn.set(e.key, s.state.jobs[e.key].slurmId);
  const dir = await slurmDir(s.projectDir, s.exp.id);
  for (const stage of stageOrder([...s.graph.values()])) {
    const ready: BatchTask[] = [];
    const afterOk = new Set<string>();
    for (const e of s.entries) {
      const g = s.graph.get(e.key)!;
      if (e.state !== 'pending' || g.stage !== stage) continue;
      const blocked = g.deps.map((d) => byKey.get(d)!).find((d) => d.state !== 'succeeded' && !waitOn.has(d.key));
      if (blocked) {
        settle(e, 'cancelled', `not run: ${blocked.key} is ${blocked.state}`);
        continue;
      }
      for (const d of g.deps) if (waitOn.has(d)) afterOk.add(waitOn.get(d)!);
      ready.push({ key: e.key, attempt: e.attempts + 1 });
    }
    for (const tasks of chunkTasks(ready)) {
      const now = new Date().toISOString();
      // The run folders first, so the queue names each run before any task touches it.
      for (const t of tasks) {
        const { config } = studyJobRun(s.projectDir, s.exp, s.graph.get(t.key)!.index, t.attempt, now);
        await createRun(s.projectDir, config);
      }
      const n = s.state.submissions.length + 1;
      const script = join(dir, `${String(n).padStart(3, '0')}-${stage}.sbatch`);
      const text = batchScript({ projectDir: s.projectDir, experimentId: s.exp.id, stage, tasks, profile: s.state.profile, defaultNmlab: defaultNmlabCommand(), afterOk: [...afterOk], logDir: join(dir, 'logs') });
      try {
        await writeFile(script, text, { mode: 0o755 });
      } catch (err) {
        throw fsError(err, 'write', script);
      }
      const arrayJobId = await s.slurm.sbatch(script, s.projectDir);
      s.state.submissions.push({ arrayJobId, stage, script: relative(s.projectDir, script), keys: tasks.map((t) => t.key), submittedAt: now });
      tasks.forEach((t, i) => {
        const e = byKey.get(t.key)!;
        const runId = studyRunId(s.exp.id, s.graph.get(t.key)!.index, t.attempt);
        Object.assign(e, { state: 'running', attempts: t.attempt, runId, runIds: [...e.runIds, runId], error: null, startedAt: now, endedAt: null });
        s.state.jobs[t.key] = { slurmId: `${arrayJobId}_${i}`, stage, attempt: t.attempt, submittedAt: now, state: 'PENDING', reason: null };
        waitOn.set(t.key, arrayJobId);
      });
      for (const t of tasks) await appendRunLog(s.projectDir, studyRunId(s.exp.id, s.graph.get(t.key)!.index, t.attempt), `submitted to Slurm as ${s.state.jobs[t.key].slurmId} (${relative(s.projectDir, script)})`);
      // Recorded at once: a kill from here on leaves Slurm ids a resume re-attaches to.
      await save(s);
    }
  }
}

/**
 * Cancel a Slurm study from this or any process: every run still going is marked cancelled,
 * then its Slurm task is cancelled (scancel). Without a live NMLab holding the study, the
 * queue is settled here too; otherwise that NMLab settles it from the run files.
 */
export async function cancelSlurmStudy(projectDir: string, id: string, slurm: SlurmControl = slurmCli): Promise<string[]> {
  const state = await readSlurmState(projectDir, id);
  if (!state) throw new NmlabError('BAD_REQUEST', `study "${id}" does not run on Slurm`);
  const exp = await readExperiment(projectDir, id);
  const entries = (await readQueue(projectDir, exp)).entries;
  const ids: string[] = [];
  for (const e of entries) {
    if (e.state !== 'running' && e.state !== 'pending') continue;
    if (e.runId) {
      const st = await readRunStatus(projectDir, e.runId).catch(() => null);
      if (st?.status === 'running') await setRunStatus(projectDir, e.runId, 'cancelled', { error: 'cancelled' });
    }
    const rec = state.jobs[e.key];
    if (rec) ids.push(rec.slurmId);
  }
  await slurm.cancel(ids);
  const holder = await lockHolder(projectDir, id);
  if (!holder) {
    await acquireLock(projectDir, id);
    try {
      for (const e of entries) if (e.state === 'running' || e.state === 'pending') settle(e, 'cancelled', 'cancelled');
      await writeQueue(projectDir, id, entries);
    } finally {
      await releaseLock(projectDir, id);
    }
  }
  return ids;
}

export type { SlurmProfile };
