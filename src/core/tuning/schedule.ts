/**
 * Learning-rate schedules, evaluated per optimisation step (DESIGN §4: cosine for vision
 * tasks, linear for language tasks, both optionally after a linear warm-up).
 *
 * After `warmupSteps` steps that ramp linearly from base/warmupSteps up to base, the remaining
 * T = totalSteps − warmupSteps steps follow, with t counted from the end of the warm-up:
 * - cosine: base · ½(1 + cos(π t / T)), torch's `CosineAnnealingLR(T_max=T, eta_min=0)`;
 * - linear: base · (1 − t / T), the usual linear decay to zero;
 * - constant: base.
 */
export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface ScheduleSpec {
  kind: ScheduleKind;
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
}

/** The learning rate used for step `step` (0-based). */
export function learningRateAt(spec: ScheduleSpec, step: number): number {
  const warm = Math.max(0, Math.floor(spec.warmupSteps ?? 0));
  if (step < warm) return (spec.baseLr * (step + 1)) / warm;
  const T = Math.max(1, spec.totalSteps - warm);
  const t = Math.min(step - warm, T);
  switch (spec.kind) {
    case 'cosine':
      return spec.baseLr * 0.5 * (1 + Math.cos((Math.PI * t) / T));
    case 'linear':
      return spec.baseLr * (1 - t / T);
    case 'constant':
      return spec.baseLr;
  }
}
