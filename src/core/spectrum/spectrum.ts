/**
 * All singular values of an M×D feature matrix, exactly (to float64 precision), and their
 * summaries (paper §5, Eqs. 2–3; DESIGN §3–§4).
 *
 * Method: the singular values of F are the square roots of the eigenvalues of the smaller Gram
 * matrix, FᵀF (D×D) when D ≤ M, else FFᵀ (M×M). The Gram matrix is accumulated in float64 over
 * row chunks (memory bounded by one chunk plus the Gram matrix), on onnxruntime when it loads
 * (`gram-ort-f64`) or in JS otherwise (`gram-js-f64`), then its eigenvalues come from
 * ../linalg/symeig.ts (Householder + implicit QL, values only).
 *
 * Resolution: through the Gram matrix, singular values below about √((M+D)·ε)·σ₁ (ε = 2⁻⁵²,
 * i.e. ~1e-6·σ₁ for 10⁴ rows) are indistinguishable from rounding noise. Eigenvalues under
 * (M+D)·ε·λ₁ are therefore reported as σ = 0; `numericalRank` counts the rest. That is what
 * keeps the SVE of rank-deficient features exact instead of adding noise terms.
 */
import { NmlabError } from '../../shared/errors';
import { gramCols, gramRows } from '../linalg/gram';
import { symmetricEigen } from '../linalg/symeig';
import { iterateNpyRows, readNpyHeader, NPY_ITEMSIZE } from '../arrays/npy';
import { readFeaturesCsv } from '../arrays/csv';
import { checkFinite } from '../arrays/validate';
import { referencePreprocess, type SpectrumPreprocess } from './preprocess';
import { spectrumStats, type SpectrumStats } from './stats';
import { ortGram, type GramSide } from './gram-ort';

/** How the Gram matrix was computed. */
export type SpectrumMethod = 'gram-ort-f64' | 'gram-js-f64';

/** Options of {@link spectrumOfMatrix} and {@link spectrumOfFile}. */
export interface SpectrumOptions {
  preprocess?: SpectrumPreprocess;
  /** Return only the K largest singular values (the summaries still use all of them). */
  topK?: number;
  /** 'auto' (default): ORT, falling back to JS; 'js' forces the JS Gram; 'ort' fails without ORT. */
  gram?: 'auto' | 'ort' | 'js';
  /** Rows per chunk when streaming; default keeps a chunk near 32 MiB. */
  chunkRows?: number;
  /** Called with the fraction of rows processed (0–1). */
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
}

/** A spectrum and its summaries; every field is JSON-serialisable. */
export interface SpectrumResult extends SpectrumStats {
  /** σ₁ ≥ σ₂ ≥ …, min(M, D) values (or the top K when asked). */
  singularValues: number[];
  m: number;
  d: number;
  preprocess: SpectrumPreprocess;
  method: SpectrumMethod;
  /** Which Gram matrix was decomposed: 'FtF' (D×D) or 'FFt' (M×M). */
  gram: 'FtF' | 'FFt';
  /** Number of singular values above the resolution floor (see the module comment). */
  numericalRank: number;
  /** Rows that were all zeros (left as zeros by `reference` preprocessing). */
  zeroRows: number;
  topK?: number;
  /** Why ORT was not used, when method is gram-js-f64 under 'auto'. */
  fallbackReason?: string;
  /** Wall time of the whole computation (read, Gram, eigenvalues). */
  seconds: number;
  /** Split of `seconds`: Gram accumulation (including reading) and the eigen step. */
  timings: { gramSeconds: number; eigenSeconds: number };
}

const CHUNK_BYTES = 32 * 1024 * 1024;

/** Accumulates the Gram matrix over chunks with the chosen backend, falling back once. */
class GramAccumulator {
  readonly g: Float64Array;
  method: SpectrumMethod;
  fallbackReason?: string;
  private scratch?: Float64Array;

  constructor(
    readonly n: number,
    readonly side: GramSide,
    private readonly mode: 'auto' | 'ort' | 'js',
  ) {
    this.g = new Float64Array(n * n);
    this.method = mode === 'js' ? 'gram-js-f64' : 'gram-ort-f64';
  }

  async add(data: Float32Array | Float64Array, rows: number, d: number): Promise<void> {
    if (rows === 0) return;
    if (this.method === 'gram-ort-f64') {
      try {
        await ortGram(data, rows, d, this.side, this.g);
        return;
      } catch (err) {
        if (this.mode === 'ort') throw new NmlabError('BACKEND_UNAVAILABLE', `onnxruntime could not compute the Gram matrix: ${err instanceof Error ? err.message : String(err)}`);
        // Nothing was added to g yet for this chunk (ortGram adds only after a successful run).
        this.method = 'gram-js-f64';
        this.fallbackReason = `onnxruntime-node unavailable (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); used the JS float64 Gram`;
      }
    }
    if (this.side === 'cols') {
      if (!this.scratch || this.scratch.length < rows * d) this.scratch = new Float64Array(rows * d);
      gramCols(data, rows, d, this.g, true, this.scratch);
    } else {
      gramRows(data, rows, d, this.g, true);
    }
  }
}

function finish(
  g: Float64Array,
  n: number,
  m: number,
  d: number,
  acc: GramAccumulator,
  preprocess: SpectrumPreprocess,
  zeroRows: number,
  t0: number,
  tGram: number,
  topK?: number,
): SpectrumResult {
  const { sigma, rank } = sigmaFromGram(g, n, m, d);
  const tEig = performance.now();
  const stats = spectrumStats(sigma);
  if (Number.isNaN(stats.sve)) throw new NmlabError('NUMERIC', `the ${m}×${d} feature matrix is all zeros: its spectrum has no SVE or LSVR`);
  const k = topK !== undefined ? Math.min(topK, n) : undefined;
  return {
    singularValues: k !== undefined ? sigma.slice(0, k) : sigma,
    ...stats,
    m,
    d,
    preprocess,
    method: acc.method,
    gram: acc.side === 'cols' ? 'FtF' : 'FFt',
    numericalRank: rank,
    zeroRows,
    ...(k !== undefined ? { topK: k } : {}),
    ...(acc.fallbackReason ? { fallbackReason: acc.fallbackReason } : {}),
    seconds: (tEig - t0) / 1000,
    timings: { gramSeconds: (tGram - t0) / 1000, eigenSeconds: (tEig - tGram) / 1000 },
  };
}

/**
 * Singular values from the eigenvalues of an n×n Gram matrix of an m×d matrix, with the
 * resolution floor described at the top of this file: eigenvalues under (m+d)·ε·λ₁ are
 * rounding noise and become σ = 0. Overwrites `g`.
 */
function sigmaFromGram(g: Float64Array, n: number, m: number, d: number): { sigma: number[]; rank: number } {
  const { values } = symmetricEigen(g, n);
  const floor = (m + d) * 2 ** -52 * Math.max(values[0], 0);
  const sigma: number[] = new Array(n);
  let rank = 0;
  for (let i = 0; i < n; i++) {
    const lam = values[i];
    if (lam > floor) {
      sigma[i] = Math.sqrt(lam);
      rank++;
    } else sigma[i] = 0;
  }
  return { sigma, rank };
}

/**
 * All singular values (descending) of a small in-memory m×d matrix, synchronously, by the same
 * method and floor as {@link spectrumOfMatrix} but with the JS Gram: for training loops
 * (per-epoch spectra of Z) that cannot await onnxruntime.
 */
export function singularValuesSync(data: Float32Array | Float64Array, m: number, d: number): number[] {
  const n = Math.min(m, d);
  const g = m <= d ? gramRows(data, m, d) : gramCols(data, m, d);
  return sigmaFromGram(g, n, m, d).sigma;
}

function checkTopK(topK: number | undefined): void {
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) throw new NmlabError('BAD_REQUEST', `topK must be a positive integer, got ${topK}`);
}

/**
 * Spectrum of an in-memory M×D row-major matrix. `name` identifies it in error messages
 * (a file name, or e.g. "tuned features Z").
 */
export async function spectrumOfMatrix(data: Float32Array | Float64Array, m: number, d: number, name: string, opts: SpectrumOptions = {}): Promise<SpectrumResult> {
  const t0 = performance.now();
  const preprocess = opts.preprocess ?? 'none';
  checkTopK(opts.topK);
  if (m < 1 || d < 1 || data.length < m * d) throw new NmlabError('BAD_REQUEST', `${name}: a ${m}×${d} matrix needs ${m * d} elements, got ${data.length}`);
  checkFinite(data.subarray(0, m * d), d, name);
  const side: GramSide = d <= m ? 'cols' : 'rows';
  const n = Math.min(m, d);
  const acc = new GramAccumulator(n, side, opts.gram ?? 'auto');
  let zeroRows = 0;
  let x: Float32Array | Float64Array = data;
  if (preprocess === 'reference') {
    const out = new Float64Array(m * d);
    zeroRows = referencePreprocess(data, m, d, out);
    x = out;
  }
  await acc.add(x, m, d);
  opts.onProgress?.(1);
  return finish(acc.g, n, m, d, acc, preprocess, zeroRows, t0, performance.now(), opts.topK);
}

/**
 * Spectrum of the features in a `.npy` (2-D, float/int) or `.csv` file (see ../arrays/csv.ts;
 * `csvLabelColumn` names a label column to drop). `.npy` files with D ≤ M are streamed in row
 * chunks; wide ones (D > M) are read whole (they are smaller than their D×D Gram anyway).
 */
export async function spectrumOfFile(file: string, opts: SpectrumOptions & { csvLabelColumn?: string | number } = {}): Promise<SpectrumResult> {
  if (/\.csv$/i.test(file)) {
    const csv = await readFeaturesCsv(file, { labelColumn: opts.csvLabelColumn });
    return spectrumOfMatrix(csv.data, csv.m, csv.d, file, opts);
  }
  const t0 = performance.now();
  checkTopK(opts.topK);
  const preprocess = opts.preprocess ?? 'none';
  const header = await readNpyHeader(file);
  if (header.shape.length !== 2) throw new NmlabError('BAD_FILE', `${file}: features must be a 2-D array (samples × dims), got shape (${header.shape.join(', ')})`);
  const [m, d] = header.shape;
  if (m < 1 || d < 1) throw new NmlabError('BAD_FILE', `${file}: the feature matrix is empty (shape ${m}×${d})`);
  const side: GramSide = d <= m ? 'cols' : 'rows';
  const n = Math.min(m, d);
  const acc = new GramAccumulator(n, side, opts.gram ?? 'auto');
  const chunkRows = side === 'rows' ? m : (opts.chunkRows ?? Math.max(1, Math.floor(CHUNK_BYTES / (d * NPY_ITEMSIZE[header.dtype]))));
  let zeroRows = 0;
  let pre: Float64Array | undefined;
  // Read chunk k+1 while the Gram of chunk k runs (file I/O and ORT both leave the JS thread
  // free), so reading costs little beyond the first chunk. Memory: two chunk buffers, reused
  // (chunk k is finished before chunk k+2 is read into its buffer).
  const chunks = iterateNpyRows(file, chunkRows, { reuseBuffers: true });
  let next = chunks.next();
  try {
    for (;;) {
      const res = await next;
      if (res.done) break;
      const chunk = res.value;
      next = chunks.next();
      next.catch(() => undefined); // surfaced by the await above on the next round
      if (opts.signal?.aborted) throw new NmlabError('CANCELLED', `spectrum of ${file} cancelled after ${chunk.start} of ${m} rows`);
      const rows = chunk.shape[0];
      let x: Float32Array | Float64Array;
      if (chunk.data instanceof Float32Array || chunk.data instanceof Float64Array) x = chunk.data;
      else if (chunk.data instanceof BigInt64Array) x = Float64Array.from(chunk.data, (v) => Number(v));
      else x = Float64Array.from(chunk.data);
      checkFiniteChunk(x, d, file, chunk.start);
      if (preprocess === 'reference') {
        if (!pre || pre.length < rows * d) pre = new Float64Array(rows * d);
        zeroRows += referencePreprocess(x, rows, d, pre);
        x = pre.subarray(0, rows * d);
      }
      await acc.add(x, rows, d);
      opts.onProgress?.((chunk.start + rows) / m);
    }
  } finally {
    await next.catch(() => undefined);
    await chunks.return(undefined);
  }
  return finish(acc.g, n, m, d, acc, preprocess, zeroRows, t0, performance.now(), opts.topK);
}

function checkFiniteChunk(x: Float32Array | Float64Array, d: number, file: string, startRow: number): void {
  try {
    checkFinite(x, d, file);
  } catch (err) {
    if (!(err instanceof NmlabError)) throw err;
    // Re-number the row from the chunk to the whole file.
    throw new NmlabError(err.code, err.message.replace(/at row (\d+)/, (_, r: string) => `at row ${Number(r) + startRow}`));
  }
}
