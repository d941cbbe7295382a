import { z } from 'zod';

/**
 * Where a study's jobs run (issue 13): `local` worker processes of the NMLab that runs the
 * queue, or `slurm` batch jobs submitted with `sbatch` on a cluster whose compute nodes see
 * the project folder (a shared filesystem). The project's run files stay the record of what
 * finished; Slurm only says which submitted jobs are still alive.
 */
export const ExecutorName = z.enum(['local', 'slurm']);
export type ExecutorName = z.infer<typeof ExecutorName>;

const SbatchWord = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:,+-]{0,127}$/, 'letters, digits and . _ : , + - only');

/**
 * sbatch resources of a stage (or of every stage, as a profile's defaults). Unset keys are
 * left to the cluster's defaults.
 */
export const SlurmResources = z
  .object({
    partition: SbatchWord.optional(),
    account: SbatchWord.optional(),
    qos: SbatchWord.optional(),
    /** Wall-time limit as sbatch takes it: "MM", "HH:MM:SS", "D-HH:MM:SS", … */
    time: z
      .string()
      .regex(/^(\d+-)?\d+(:\d{1,2}){0,2}$/, 'a Slurm time is minutes ("30"), "HH:MM:SS" or "D-HH:MM:SS"')
      .optional(),
    cpus: z.number().int().min(1).max(4096).optional(),
    /** Memory per node as sbatch takes it: "4G", "500M", "16000". */
    memory: z
      .string()
      .regex(/^\d+[KMGT]?$/, 'memory is a number with an optional K, M, G or T suffix ("4G")')
      .optional(),
    /** GPUs per task: a count (2) or type:count ("a100:1"). */
    gpus: z.union([z.number().int().min(0).max(64), SbatchWord]).optional(),
    /** Extra `#SBATCH` options, written as given ("--constraint=a100", "--exclusive"). */
    extra: z.array(z.string().regex(/^--?[A-Za-z][^\n]*$/, 'an extra #SBATCH line is one sbatch option such as "--constraint=a100"')).optional(),
  })
  .strict();
export type SlurmResources = z.infer<typeof SlurmResources>;

/**
 * A cluster profile, kept in the project as `slurm/profiles/<name>.yaml` (or `.json`) so
 * that everyone on the project submits the same way.
 */
export const SlurmProfile = z
  .object({
    /**
     * The command that starts NMLab on a compute node, e.g. "nmlab" when it is on the PATH, or
     * "node /opt/nmlab/bin/nmlab.mjs". Default: this installation's node and bin/nmlab.mjs.
     */
    nmlab: z.string().min(1).max(2000).optional(),
    /** Shell lines run before it on the node ("module load nodejs/20", "source ~/venv/bin/activate"). */
    setup: z.array(z.string().max(2000)).default([]),
    /** Resources of every stage … */
    defaults: SlurmResources.default({}),
    /** … and per stage (pretrain, features, tune, …), over the defaults. */
    stages: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'a stage name'), SlurmResources).default({}),
    /** Seconds between looks at squeue and the run files. */
    pollSeconds: z.number().min(0.2).max(600).default(5),
    /**
     * A task gets SIGTERM this many seconds before its time limit (sbatch --signal): it marks
     * its run interrupted and requeues itself, like a preempted task.
     */
    signalSeconds: z.number().int().min(5).max(3600).default(60),
  })
  .strict();
export type SlurmProfile = z.infer<typeof SlurmProfile>;
export type SlurmProfileInput = z.input<typeof SlurmProfile>;

/** The executor a new study runs on, as the builder and `nmlab run --executor` choose it. */
export const ExecutorChoice = z
  .object({
    name: ExecutorName,
    /** A Slurm profile of the project (slurm/profiles/NAME.yaml); none: the cluster's defaults. */
    profile: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a profile name is letters, digits, ".", "-" and "_"').optional(),
  })
  .strict();
export type ExecutorChoice = z.infer<typeof ExecutorChoice>;

/** Where a job of a Slurm study is in Slurm, for the queue view. */
export const SlurmTaskView = z.object({ id: z.string(), state: z.string(), reason: z.string().nullable() });
export type SlurmTaskView = z.infer<typeof SlurmTaskView>;

/** Slurm job ids and states of a study's jobs, as last seen ("123_4", "PENDING"). */
export const SlurmJobRecord = z.object({
  /** `<array job id>_<task id>`. */
  slurmId: z.string(),
  stage: z.string(),
  /** The attempt the task was submitted for (a requeued task runs attempt + restarts). */
  attempt: z.number().int().min(1),
  submittedAt: z.string(),
  /** The Slurm state last seen (PENDING, RUNNING, …), or GONE once squeue no longer lists it. */
  state: z.string(),
  /** Why Slurm holds it, when pending ("Dependency", "Resources"). */
  reason: z.string().nullable().default(null),
});
export type SlurmJobRecord = z.infer<typeof SlurmJobRecord>;

/** `experiments/<id>/slurm/state.json`: the study runs on Slurm; what was submitted. */
export const SlurmStudyState = z.object({
  schemaVersion: z.literal(1),
  executor: z.literal('slurm'),
  /** The profile's name (null: the built-in default) and its content as used. */
  profileName: z.string().nullable(),
  profile: SlurmProfile,
  /** Every sbatch made for the study, oldest first; `script` is relative to the project. */
  submissions: z.array(z.object({ arrayJobId: z.string(), stage: z.string(), script: z.string(), keys: z.array(z.string()), submittedAt: z.string() })),
  /** The latest submission of each job key. */
  jobs: z.record(z.string(), SlurmJobRecord),
});
export type SlurmStudyState = z.infer<typeof SlurmStudyState>;
