/** The open project's backbones with their provenance and cached features. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { BackboneEntry } from '../../../shared/contract/backbonesService';
import { useLabClient } from '../client';

export const useBackbonesStore = defineStore('backbones', () => {
  const client = useLabClient();
  const list = ref<BackboneEntry[]>([]);
  const projectDir = ref<string | null>(null);

  async function refresh(dir: string): Promise<void> {
    const next = await client.api.backbones.list({ projectDir: dir });
    projectDir.value = dir;
    list.value = next;
  }

  return { list, projectDir, refresh };
});
