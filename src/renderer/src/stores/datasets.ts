/** The open project's datasets, kept in step with the backend after every import or derivation. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { DatasetSummary } from '../../../shared/contract/datasets';
import { useLabClient } from '../client';

export const useDatasetsStore = defineStore('datasets', () => {
  const client = useLabClient();
  const list = ref<DatasetSummary[]>([]);
  /** The project the list belongs to. */
  const projectDir = ref<string | null>(null);

  async function refresh(dir: string): Promise<void> {
    const next = await client.api.datasets.list({ projectDir: dir });
    projectDir.value = dir;
    list.value = next;
  }

  return { list, projectDir, refresh };
});
