/**
 * Opening ONNX backbones with onnxruntime-node and reading their interface: input and output
 * names, element types and shapes (symbolic batch dims as strings). A file ORT cannot load
 * gets one clear BAD_FILE error naming it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { BackboneManifest, OnnxInspection, TensorInfo } from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import { loadOrt, ortThreads, sessionOptions } from '../onnx/providers';

export type OrtSession = import('onnxruntime-node').InferenceSession;

/** A backbone located on disk: its model file and, when present, its manifest. */
export interface BackboneRef {
  onnxFile: string;
  manifest?: BackboneManifest;
  /** The manifest's path, when there is one. */
  manifestFile?: string;
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (err) {
    throw new NmlabError('NOT_FOUND', `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return hash.digest('hex');
}

/** Open an ONNX model for inference on the chosen execution provider (../onnx/providers.ts). */
export async function openSession(file: string, threads = ortThreads()): Promise<OrtSession> {
  try {
    await stat(file);
  } catch {
    throw new NmlabError('NOT_FOUND', `ONNX model ${file} does not exist`);
  }
  const ort = await loadOrt().catch((err: unknown) => {
    throw new NmlabError('BACKEND_UNAVAILABLE', `onnxruntime-node could not load (${err instanceof Error ? err.message : String(err)}); run \`nmlab doctor\``);
  });
  const options = await sessionOptions({ intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new NmlabError('BAD_FILE', `${file} is not a loadable ONNX model: ${why}`);
  }
}

function tensorInfo(m: unknown, name: string): TensorInfo {
  const meta = m as { isTensor?: boolean; type?: unknown; shape?: readonly unknown[] } | undefined;
  if (!meta || meta.isTensor === false) return { name, type: 'non-tensor', shape: [] };
  const shape = (meta.shape ?? []).map((d) => (typeof d === 'number' ? (d >= 0 ? d : null) : typeof d === 'string' ? d : null));
  return { name, type: String(meta.type ?? 'unknown'), shape };
}

/** Inputs and outputs of an open session. */
export function sessionIo(session: OrtSession): { inputs: TensorInfo[]; outputs: TensorInfo[] } {
  const s = session as OrtSession & { inputMetadata?: readonly unknown[]; outputMetadata?: readonly unknown[] };
  return {
    inputs: session.inputNames.map((n, i) => tensorInfo(s.inputMetadata?.[i], n)),
    outputs: session.outputNames.map((n, i) => tensorInfo(s.outputMetadata?.[i], n)),
  };
}

/** Inspect an .onnx file: sha256, size, inputs, outputs. */
export async function inspectOnnx(file: string): Promise<OnnxInspection> {
  const session = await openSession(file, 1);
  try {
    const { inputs, outputs } = sessionIo(session);
    const [sha256, st] = await Promise.all([sha256File(file), stat(file)]);
    return { file, sha256, bytes: st.size, inputs, outputs };
  } finally {
    await session.release();
  }
}
