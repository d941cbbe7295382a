/**
 * What a view's route names in the open project (`/runs/:id`, `/experiments/:id`, …): the id
 * from the route, the project folder, and the item fetched for them. It loads when the view is
 * mounted and again whenever the id or the project changes: a direct link may mount the view
 * before the current project is known, so it loads once it is. Until a project is open nothing
 * is fetched. `load` re-reads on demand (a Refresh button); a failed load keeps the last item
 * and sets `error`, a good one clears it.
 */
import { computed, onMounted, shallowRef, watch, type ComputedRef, type ShallowRef } from 'vue';
import { useRoute } from 'vue-router';
import { errorMessage } from '../client';
import { useProjectsStore } from '../stores/projects';

export interface RouteLoad<T> {
  /** The route's `id` parameter. */
  id: ComputedRef<string>;
  /** The open project's folder, or null when none is open. */
  dir: ComputedRef<string | null>;
  /** The last item loaded (replaced whole: its parts are not reactive). */
  data: ShallowRef<T | null>;
  error: ShallowRef<string | null>;
  load(): Promise<void>;
}

export function useRouteLoad<T>(fetch: (projectDir: string, id: string) => Promise<T>): RouteLoad<T> {
  const route = useRoute();
  const projects = useProjectsStore();
  const id = computed(() => String(route.params.id));
  const dir = computed(() => projects.current?.dir ?? null);
  const data = shallowRef<T | null>(null);
  const error = shallowRef<string | null>(null);

  async function load(): Promise<void> {
    const projectDir = dir.value;
    if (!projectDir) return;
    try {
      data.value = await fetch(projectDir, id.value);
      error.value = null;
    } catch (err) {
      error.value = errorMessage(err);
    }
  }

  onMounted(load);
  watch([dir, id], load);
  return { id, dir, data, error, load };
}
