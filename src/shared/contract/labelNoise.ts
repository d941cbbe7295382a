import { z } from 'zod';

/**
 * Asymmetric label noise (paper §7.3) as the contract states it, shared by the study spec's
 * pre-training noise, the pre-training job and the dataset page's `noise` action: a class map
 * sends each source class to the one class its flipped samples get; without a map, samples
 * flip uniformly among the chosen classes (src/core/noise/inject.ts draws both).
 */

/** A class index of a dataset (0, 1, 2, …). */
export const ClassIndex = z.number().int().min(0);

/** Class → class its flipped samples get; keys are class indices written as strings (`{"3": 5}`). */
export const ClassMap = z.record(z.string().regex(/^\d+$/, 'class map keys are class indices'), ClassIndex);
export type ClassMap = z.infer<typeof ClassMap>;

/**
 * What makes a class subset and map undrawable, in the words the spec describer prints (null:
 * fine): nothing to flip, one class with nowhere to go, or a class sent to itself. Whether the
 * classes exist depends on the dataset and is checked when the noise is drawn.
 */
export function asymmetricNoiseProblem(classes: readonly number[] | undefined, map: ClassMap | undefined): { key: 'map' | 'classes'; message: string } | null {
  const entries = Object.entries(map ?? {});
  if (!entries.length) {
    if (!classes?.length) return { key: 'map', message: 'asymmetric noise needs a class map with at least one entry (source class: target class) or at least 2 classes' };
    if (new Set(classes).size < 2) return { key: 'classes', message: 'asymmetric noise without a class map needs at least 2 classes to flip between' };
    return null;
  }
  const self = entries.find(([k, v]) => Number(k) === v);
  if (self) return { key: 'map', message: `the class map sends class ${self[0]} to itself; a flip must change the class` };
  return null;
}
