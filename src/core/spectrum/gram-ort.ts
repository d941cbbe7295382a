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
import { attr, encodeModel, valueInfo, type AttrValue, type NodeSpec } from '../onnx/builder';
import { loadOrt, ortThreads, sessionOptions } from '../onnx/providers';

type Session = import('onnxruntime-node').InferenceSession;

/** `'cols'`: FᵀF (d×d). `'rows'`: FFᵀ (rows×rows). */
export type GramSide = 'cols' | 'rows';

const sessions = new Map<string, Promise<Session>>();

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

async function session(inputType: 'float32' | 'float64', side: GramSide): Promise<Session> {
  const key = `${inputType}/${side}`;
  let s = sessions.get(key);
  if (!s) {
    s = loadOrt().then(async (ort) =>
      ort.InferenceSession.create(gramModel(inputType, side), await sessionOptions({ intraOpNumThreads: ortThreads(), interOpNumThreads: 1, graphOptimizationLevel: 'all' })),
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
