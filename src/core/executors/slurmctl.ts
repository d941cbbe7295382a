/**
 * The Slurm commands NMLab uses, run as child processes (the cluster's own clients, so the
 * user's SLURM_CONF and credentials apply): sbatch to submit, squeue to tell alive from lost,
 * scontrol for a finished job's last state, scancel to cancel. Accounting (sacct) is not
 * needed: many small clusters, and the test cluster, run without slurmdbd.
 */
import { execFile } from 'node:child_process';
import { NmlabError } from '../../shared/errors';
import { workerEnv } from '../jobs/launcher';

/** What the executor needs from Slurm; tests of the driver may supply their own. */
export interface SlurmControl {
  /** Submit a batch script; the job id (of the array). */
  sbatch(script: string, cwd: string): Promise<string>;
  /** Every job of this user that Slurm still holds (pending, running, completing…), by `<array>_<task>` id. */
  queue(): Promise<Map<string, { state: string; reason: string | null }>>;
  /** The state Slurm last recorded for a job (COMPLETED, FAILED, TIMEOUT, …); null once forgotten. */
  finalState(id: string): Promise<string | null>;
  cancel(ids: string[]): Promise<void>;
  /** Put a running task back in the queue (after SIGTERM before its time limit). */
  requeue(id: string): Promise<void>;
}

function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // sbatch passes this environment on to the tasks: the same one a local worker gets.
    execFile(cmd, args, { cwd, env: workerEnv(process.env), maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT') {
        reject(new NmlabError('UNSUPPORTED', `\`${cmd}\` is not installed or not on the PATH; the slurm executor runs where Slurm's client commands work (a cluster's login node)`));
        return;
      }
      reject(new NmlabError('JOB_FAILED', `\`${cmd} ${args.join(' ')}\` failed: ${(stderr || err.message).trim()}`));
    });
  });
}

/** Parse `squeue -h -r -o '%i|%T|%r'` output. */
export function parseSqueue(text: string): Map<string, { state: string; reason: string | null }> {
  const out = new Map<string, { state: string; reason: string | null }>();
  for (const line of text.split('\n')) {
    const [id, state, reason] = line.trim().split('|');
    if (!id || !state) continue;
    out.set(id, { state, reason: reason && reason !== 'None' ? reason : null });
  }
  return out;
}

/** Parse the job id from `sbatch --parsable` ("123" or "123;cluster"). */
export function parseSbatch(text: string): string {
  const id = text.trim().split(';')[0];
  if (!/^\d+$/.test(id)) throw new NmlabError('JOB_FAILED', `sbatch answered "${text.trim()}", not a job id`);
  return id;
}

export const slurmCli: SlurmControl = {
  async sbatch(script, cwd) {
    return parseSbatch(await run('sbatch', ['--parsable', script], cwd));
  },
  async queue() {
    const user = process.env.USER ?? (await run('id', ['-un'])).trim();
    return parseSqueue(await run('squeue', ['-h', '-r', '-u', user, '-o', '%i|%T|%r']));
  },
  async finalState(id) {
    try {
      const text = await run('scontrol', ['-o', 'show', 'job', id]);
      return /\bJobState=(\S+)/.exec(text)?.[1] ?? null;
    } catch {
      // "Invalid job id specified": Slurm has forgotten it (MinJobAge has passed).
      return null;
    }
  },
  async cancel(ids) {
    if (ids.length) await run('scancel', ids);
  },
  async requeue(id) {
    await run('scontrol', ['requeue', id]);
  },
};
