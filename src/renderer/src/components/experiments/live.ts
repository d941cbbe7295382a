/**
 * The queue view's state: the experiment the route names (loaded by useRouteLoad, as the other
 * route views load theirs), kept current by `experiment` events. Events arrive already
 * coalesced per job (at most ~10 a second each); handling one only appends to plain arrays. The
 * views read the state through `shallowRef`s that are triggered at most every FLUSH_MS, in an
 * animation frame, so however many jobs stream at once the page re-renders a few times a second
 * and never inside the message handler.
 */
import { onBeforeUnmount, shallowRef, triggerRef } from 'vue';
import type { ExperimentEvent, LiveProgress, MetricPoint } from '../../../../shared/contract/experiments';
import { useLabClient } from '../../client';
import { useRouteLoad } from '../../composables/useRouteLoad';

export interface JobLive {
  runId: string | null;
  progress: LiveProgress | null;
  loss: MetricPoint[];
  epochs: MetricPoint[];
  spectrum: MetricPoint | null;
}

/** Live points kept per job (older ones are thinned by half when exceeded). */
const MAX_POINTS = 2000;
/** Shortest interval between two re-renders caused by live events. */
const FLUSH_MS = 250;

export function useExperimentLive() {
  const client = useLabClient();
  const { id, dir, data: detail, error } = useRouteLoad((projectDir, experimentId) => client.api.experiments.get({ projectDir, id: experimentId }));
  const live = shallowRef(new Map<string, JobLive>());

  function jobLive(key: string): JobLive {
    let j = live.value.get(key);
    if (!j) live.value.set(key, (j = { runId: null, progress: null, loss: [], epochs: [], spectrum: null }));
    return j;
  }

  let pendingQueue: Extract<ExperimentEvent, { type: 'queue' }> | null = null;
  let liveDirty = false;
  let scheduled = false;
  let lastFlush = 0;

  function flush(): void {
    scheduled = false;
    lastFlush = performance.now();
    if (pendingQueue) {
      const d = detail.value;
      if (d) detail.value = { ...d, summary: pendingQueue.summary, jobs: pendingQueue.jobs };
      pendingQueue = null;
    }
    if (liveDirty) {
      liveDirty = false;
      triggerRef(live);
    }
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    const wait = Math.max(0, lastFlush + FLUSH_MS - performance.now());
    setTimeout(() => requestAnimationFrame(flush), wait);
  }

  function onEvent(e: ExperimentEvent): void {
    if (e.experimentId !== id.value || e.projectDir !== dir.value) return;
    if (e.type === 'queue') {
      pendingQueue = e;
      schedule();
      return;
    }
    const j = jobLive(e.key);
    // A new attempt (retry/resume) starts its curves afresh.
    if (j.runId !== e.runId) Object.assign(j, { runId: e.runId, progress: null, loss: [], epochs: [], spectrum: null });
    if (e.progress) j.progress = e.progress;
    for (const p of e.points) {
      if (p.series === 'loss') j.loss.push(p);
      else if (p.series === 'epoch') j.epochs.push(p);
      else if (p.series === 'spectrum') j.spectrum = p;
    }
    if (j.loss.length > MAX_POINTS) j.loss = j.loss.filter((_, i) => i % 2 === 1);
    liveDirty = true;
    schedule();
  }

  const stop = client.on('experiment', onEvent);
  onBeforeUnmount(stop);
  return { id, dir, detail, live, error };
}
