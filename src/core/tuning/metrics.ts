/**
 * Classification metrics (DESIGN §4: accuracy and macro-F1 on ID tests), as scikit-learn
 * computes them: macro-F1 averages the per-class F1 over every class present in the true or
 * the predicted labels, with F1 = 0 where precision and recall are both 0.
 */
export function accuracy(yTrue: Int32Array, yPred: Int32Array): number {
  let hit = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) hit++;
  return yTrue.length === 0 ? 0 : hit / yTrue.length;
}

export function macroF1(yTrue: Int32Array, yPred: Int32Array): number {
  const tp = new Map<number, number>();
  const fp = new Map<number, number>();
  const fn = new Map<number, number>();
  const classes = new Set<number>();
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    classes.add(t);
    classes.add(p);
    if (t === p) inc(tp, t);
    else {
      inc(fp, p);
      inc(fn, t);
    }
  }
  if (classes.size === 0) return 0;
  let sum = 0;
  for (const c of classes) {
    const a = tp.get(c) ?? 0;
    const denom = 2 * a + (fp.get(c) ?? 0) + (fn.get(c) ?? 0);
    sum += denom === 0 ? 0 : (2 * a) / denom;
  }
  return sum / classes.size;
}
