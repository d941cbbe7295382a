/** Projects: the open project and the recent list, kept in step with the backend. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { ProjectInfo, RecentProject } from '../../../shared/contract/projects';
import { useLabClient } from '../client';

export const useProjectsStore = defineStore('projects', () => {
  const client = useLabClient();
  const current = ref<ProjectInfo | null>(null);
  const recent = ref<RecentProject[]>([]);
  const loaded = ref(false);

  async function refresh(): Promise<void> {
    const [cur, list] = await Promise.all([client.api.projects.current({}), client.api.projects.listRecent({})]);
    current.value = cur;
    recent.value = list;
    loaded.value = true;
  }

  /** Run a change, then re-read the list so the UI shows what is on disk. */
  async function change(action: () => Promise<ProjectInfo | null>): Promise<void> {
    const result = await action();
    if (result) current.value = result;
    await refresh();
  }

  return {
    current,
    recent,
    loaded,
    refresh,
    create: (dir: string, name: string) => change(() => client.api.projects.create({ dir, name })),
    open: (dir: string) => change(() => client.api.projects.open({ dir })),
    rename: (dir: string, name: string) => change(() => client.api.projects.rename({ dir, name })),
    close: (dir: string) =>
      change(async () => {
        await client.api.projects.close({ dir });
        return null;
      }),
    forget: (dir: string) =>
      change(async () => {
        await client.api.projects.forget({ dir });
        return null;
      }),
  };
});
