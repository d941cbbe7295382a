/**
 * The class-map editor's logic (pure, no Vue): what a class is called, and a map with one
 * entry changed. The map is the contract's {@link ClassMap} (src/shared/contract/labelNoise.ts):
 * source class → the class its flipped samples get, keys written as strings.
 */
import type { ClassMap } from '../../../shared/contract/labelNoise';

/** Names an import gives classes it has no names for (`class-3`): they add nothing to the index. */
const PLACEHOLDER = /^class[-_ ]?\d+$/i;

/** "3 · Dress" from the dataset's class names, "class 3" where it has none for that class. */
export function classLabel(names: readonly string[], i: number): string {
  const name = names[i];
  return name && !PLACEHOLDER.test(name) && name !== String(i) ? `${i} · ${name}` : `class ${i}`;
}

/**
 * The class map written in a spec, as far as it is one: entries with an index key and an
 * integer target (anything else is left to the schema's messages). Absent: an empty map.
 */
export function readClassMap(v: unknown): ClassMap {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter((e): e is [string, number] => /^\d+$/.test(e[0]) && Number.isInteger(e[1])));
}

/** `map` with `source` sent to `target` (null: unchanged, its entry removed); keys in class order. */
export function withMapEntry(map: ClassMap, source: number, target: number | null): ClassMap {
  const next: Record<number, number> = {};
  for (const [k, v] of Object.entries(map)) next[Number(k)] = v;
  if (target === null) delete next[source];
  else next[source] = target;
  return Object.fromEntries(Object.keys(next).map(Number).sort((a, b) => a - b).map((k) => [String(k), next[k]]));
}

/**
 * The rows the editor shows: every class of the dataset, and any class the map names that the
 * dataset does not have (typed by hand, or the dataset changed) so it can be seen and removed.
 */
export function mapRows(numClasses: number, map: ClassMap): number[] {
  const named = Object.keys(map).map(Number).filter((k) => k >= numClasses);
  return [...Array.from({ length: numClasses }, (_, i) => i), ...named.sort((a, b) => a - b)];
}
