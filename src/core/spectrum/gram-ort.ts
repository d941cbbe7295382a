/**
 * Float64 Gram matrices of feature chunks on onnxruntime-node (DESIGN §3–§4).
 *
 * Why ORT: the Gram matrix FᵀF of a 10000×1024 feature matrix is ≈21 GFLOP; plain JS float64
 * manages a few GFLOP/s, ORT's CPU GEMM (MLAS, multi-threaded) tens. The model is built in
 * code (../onnx/builder.ts): `x (rows×d, float32|float64) → Cast(double) → Gemm(x, x,
 * transA=1)` for FᵀF, or `transB=1` for FFᵀ. The Cast runs inside ORT, so float32 feature
 * chunks are never widened in JS; all products and sums are float64.
 *
 * onnxruntime-node is imported lazily: where its native binary cannot load, callers fall back
 * to the JS kernels in ../linalg/gram.ts and say so in the result.
 */
import { availableParallelism } from 'node:os';
import { attr, encodeModel, valueInfo, type AttrValue, type NodeSpec } from '../onnx/builder';

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

/** `'cols'`: FᵀF (d×d). `'rows'`: FFᵀ (rows×rows). */
export type GramSide = 'cols' | 'rows';

let ortPromise: Promise<Ort> | undefined;
const sessions = new Map<string, Promise<Session>>();

/** Loads onnxruntime-node once; rejects with the loader's error where it is unavailable. */
export function loadOrt(): Promise<Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort);
  return ortPromise;
}

/** The ONNX model computing the Gram matrix of one chunk (exported for tests and reuse). */
export function gramModel(inputType: 'float32' | 'float64', side: GramSide): Uint8Array {
  const gemmAttrs: Record<string, AttrValue> = side === 'cols' ? { transA: attr.int(1) } : { transB: attr.int(1) };
  const outShape = side === 'cols' ? ['d', 'd'] : ['rows', 'rows'];
  const nodes: NodeSpec[] =
    inputType === 'float64'
      ? [{ opType: 'Gemm', inputs: ['x', 'x'], outputs: ['gram'], attributes: gemmAttrs }]
      : [
          { opType: 'Cast', inputs: ['x'], outputs: ['x64'], attributes: { to: attr.int(11) } },
          { opType: 'Gemm', inputs: ['x64', 'x64'], outputs: ['gram'], attributes: gemmAttrs },
        ];
  return encodeModel({
    docString: 'NMLab spectrum: float64 Gram matrix of a feature chunk',
    graph: {
      name: `gram_${side}_${inputType}`,
      inputs: [valueInfo('x', inputType, ['rows', 'd'])],
      outputs: [valueInfo('gram', 'float64', outShape)],
      nodes,
    },
  });
}

/** Threads ORT may use: NMLAB_ORT_THREADS, else every core. */
export function ortThreads(): number {
  const env = Number(process.env.NMLAB_ORT_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

async function session(inputType: 'float32' | 'float64', side: GramSide): Promise<Session> {
  const key = `${inputType}/${side}`;
  let s = sessions.get(key);
  if (!s) {
    s = loadOrt().then((ort) =>
      ort.InferenceSession.create(gramModel(inputType, side), {
        intraOpNumThreads: ortThreads(),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      }),
    );
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

/**
 * Gram matrix of a rows×d chunk with ORT: FᵀF (d×d) for side 'cols', FFᵀ (rows×rows) for
 * 'rows'. When `acc` is given the result is added into it (streaming over chunks) and `acc`
 * is returned.
 */
export async function ortGram(data: Float32Array | Float64Array, rows: number, d: number, side: GramSide, acc?: Float64Array): Promise<Float64Array> {
  const ort = await loadOrt();
  const inputType = data instanceof Float32Array ? 'float32' : 'float64';
  const s = await session(inputType, side);
  const x = new ort.Tensor(inputType, data.subarray(0, rows * d), [rows, d]);
  const out = await s.run({ x });
  const g = out.gram.data as Float64Array;
  if (!acc) return g;
  for (let i = 0; i < g.length; i++) acc[i] += g[i];
  return acc;
}
