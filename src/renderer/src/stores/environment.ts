/**
 * The Environment page's state: the doctor job (started through `jobs.start`, followed through
 * job events) and the reports it produced in this session.
 */
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { EnvironmentReport } from '../../../shared/contract/environment';
import type { JobEvent, JobInfo, Progress } from '../../../shared/contract/jobs';
import { useLabClient } from '../client';

/** One finished doctor run, kept for the throughput chart. */
export interface DoctorRun {
  jobId: string;
  report: EnvironmentReport;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export const useEnvironmentStore = defineStore('environment', () => {
  const client = useLabClient();
  const report = ref<EnvironmentReport | null>(null);
  const runs = ref<DoctorRun[]>([]);
  const job = ref<JobInfo | null>(null);
  const progress = ref<Progress | null>(null);
  const error = ref<string | null>(null);
  const running = computed(() => job.value !== null && !TERMINAL.has(job.value.state));
  let subscribed = false;

  function addRun(info: JobInfo): void {
    const parsed = EnvironmentReport.safeParse(info.result);
    if (!parsed.success || runs.value.some((r) => r.jobId === info.id)) return;
    runs.value = [...runs.value, { jobId: info.id, report: parsed.data }];
    report.value = parsed.data;
  }

  function settle(info: JobInfo): void {
    job.value = info;
    if (info.progress) progress.value = info.progress;
    if (info.state === 'succeeded') {
      error.value = null;
      addRun(info);
    } else if (info.state === 'failed' || info.state === 'cancelled') {
      error.value = info.error ? info.error.message : `the diagnostics job was ${info.state}`;
    }
  }

  function onJobEvent(e: JobEvent): void {
    const active = job.value;
    if (e.type === 'state') {
      if (e.job.spec.kind !== 'doctor') return;
      if (active && e.job.id === active.id) settle(e.job);
      else if (e.job.state === 'succeeded') addRun(e.job);
    } else if (e.type === 'progress' && active && e.jobId === active.id && !TERMINAL.has(active.state)) {
      progress.value = e.progress;
    }
  }

  /** Read what the backend already knows: the last report and earlier doctor jobs. */
  async function load(): Promise<void> {
    if (!subscribed) {
      client.on('job', onJobEvent);
      subscribed = true;
    }
    const [last, jobs] = await Promise.all([client.api.env.lastReport({}), client.api.jobs.list({})]);
    for (const j of jobs) if (j.spec.kind === 'doctor' && j.state === 'succeeded') addRun(j);
    const live = jobs.find((j) => j.spec.kind === 'doctor' && !TERMINAL.has(j.state));
    if (live && !running.value) settle(live);
    if (last) report.value = last;
  }

  async function runDoctor(matmulSize: number): Promise<void> {
    error.value = null;
    progress.value = { done: 0, total: 1, etaSeconds: null, message: 'starting the worker' };
    try {
      const started = await client.api.jobs.start({ spec: { kind: 'doctor', matmulSize } });
      // Events may have overtaken the answer; read the job's state now in case it already ended.
      if (!job.value || job.value.id !== started.id) job.value = started;
      const now = await client.api.jobs.get({ id: started.id });
      if (TERMINAL.has(now.state)) settle(now);
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err);
      job.value = null;
    }
  }

  async function cancel(): Promise<void> {
    if (job.value && running.value) settle(await client.api.jobs.cancel({ id: job.value.id }));
  }

  return { report, runs, job, progress, error, running, load, runDoctor, cancel };
});
