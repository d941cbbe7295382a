/**
 * sbatch batch scripts for a study stage (pure: no Slurm, no files). One script is one job
 * array: task i runs NMLab's worker for the i-th job key on a compute node
 * (`nmlab worker --project DIR --study ID --job KEY --attempt N`), after the Slurm jobs it
 * depends on have succeeded (`--dependency=afterok:…`, a failed dependency cancels it).
 * The scripts are written into the project (experiments/<id>/slurm/) for inspection.
 */
import type { SlurmProfile, SlurmResources } from '../../shared/contract/executors';
import { NmlabError } from '../../shared/errors';

/** Slurm's default MaxArraySize is 1001 (task ids 0–1000); larger stages become several arrays. */
export const MAX_ARRAY_TASKS = 1000;

export interface BatchTask {
  key: string;
  /** The attempt this submission runs; a requeued task adds SLURM_RESTART_COUNT. */
  attempt: number;
}

export interface BatchScriptInput {
  projectDir: string;
  experimentId: string;
  stage: string;
  tasks: BatchTask[];
  profile: SlurmProfile;
  /** The command that starts NMLab on a node when the profile names none. */
  defaultNmlab: string;
  /** Slurm job ids that must succeed first ("123" for a whole array, "124_3" for one task). */
  afterOk: string[];
  /** Where the tasks' stdout/stderr go (absolute; a folder the nodes can write). */
  logDir: string;
}

/** Single-quote `s` for bash. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A stage's resources: the profile's defaults, then the stage's own keys over them. */
export function stageResources(profile: SlurmProfile, stage: string): SlurmResources {
  const own = profile.stages[stage] ?? {};
  const extra = [...(profile.defaults.extra ?? []), ...(own.extra ?? [])];
  return { ...profile.defaults, ...own, ...(extra.length ? { extra } : {}) };
}

function resourceLines(r: SlurmResources): string[] {
  const out: string[] = [];
  if (r.partition) out.push(`--partition=${r.partition}`);
  if (r.account) out.push(`--account=${r.account}`);
  if (r.qos) out.push(`--qos=${r.qos}`);
  if (r.time) out.push(`--time=${r.time}`);
  if (r.cpus) out.push(`--cpus-per-task=${r.cpus}`);
  if (r.memory) out.push(`--mem=${r.memory}`);
  if (r.gpus !== undefined && r.gpus !== 0) out.push(`--gpus=${r.gpus}`);
  for (const x of r.extra ?? []) out.push(x);
  return out;
}

/** The job name Slurm shows: `nmlab-<study>-<stage>` (squeue truncates long names, not us). */
export function slurmJobName(experimentId: string, stage: string): string {
  return `nmlab-${experimentId}-${stage}`;
}

/** The text of one batch script (an array of `tasks.length` tasks). */
export function batchScript(input: BatchScriptInput): string {
  const { tasks, profile } = input;
  if (tasks.length === 0) throw new NmlabError('BAD_REQUEST', `stage ${input.stage} of study ${input.experimentId}: no jobs to submit`);
  if (tasks.length > MAX_ARRAY_TASKS) throw new NmlabError('BAD_REQUEST', `stage ${input.stage}: ${tasks.length} jobs in one array, more than ${MAX_ARRAY_TASKS}; split with chunkTasks()`);
  const sbatch = [
    `--job-name=${slurmJobName(input.experimentId, input.stage)}`,
    `--array=0-${tasks.length - 1}`,
    `--output=${input.logDir}/${input.stage}-%A_%a.out`,
    '--open-mode=append',
    // A task that gets SIGTERM before its time limit (or is preempted) requeues itself.
    '--requeue',
    `--signal=B:TERM@${profile.signalSeconds}`,
    ...resourceLines(stageResources(profile, input.stage)),
  ];
  if (input.afterOk.length) sbatch.push(`--dependency=afterok:${input.afterOk.join(':')}`, '--kill-on-invalid-dep=yes');
  const nmlab = profile.nmlab ?? input.defaultNmlab;
  return [
    '#!/bin/bash',
    `# NMLab study ${input.experimentId}, stage ${input.stage}: ${tasks.length} job${tasks.length === 1 ? '' : 's'}.`,
    '# Written by NMLab when it submitted them (kept for inspection; resubmitting by hand bypasses',
    '# the queue, which then does not know the new Slurm ids).',
    ...sbatch.map((s) => `#SBATCH ${s}`),
    'set -euo pipefail',
    'keys=(',
    ...tasks.map((t) => `  ${shellQuote(t.key)}`),
    ')',
    `attempts=(${tasks.map((t) => t.attempt).join(' ')})`,
    'i="$SLURM_ARRAY_TASK_ID"',
    ...profile.setup,
    // exec: NMLab itself gets the SIGTERM Slurm sends to the batch shell (--signal=B:…, preemption).
    `exec ${nmlab} worker --project ${shellQuote(input.projectDir)} --study ${shellQuote(input.experimentId)} --job "\${keys[$i]}" --attempt "$(( \${attempts[$i]} + \${SLURM_RESTART_COUNT:-0} ))"`,
    '',
  ].join('\n');
}

/** Split a stage's tasks into arrays Slurm accepts. */
export function chunkTasks<T>(tasks: T[], size = MAX_ARRAY_TASKS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < tasks.length; i += size) out.push(tasks.slice(i, i + size));
  return out;
}
