/**
 * Batched feature extraction with onnxruntime-node (DESIGN §3): preprocess a batch of images
 * as the backbone declares (timm order, ../images/preprocess.ts), run the model, read the
 * feature output and flatten it to N×D float32. Shape and name mismatches become NmlabErrors
 * naming the model file and what it expected.
 */
import type { PreprocessSpec, ResolvedPreprocess, TensorInfo } from '../../shared/contract/backbones';
import { NmlabError } from '../../shared/errors';
import type { RawImage } from '../images/image';
import { batchDims, preprocessInto, resolvePreprocess } from '../images/preprocess';
import { checkFinite } from '../arrays/validate';
import { loadOrt } from '../onnx/providers';
import { openSession, sessionIo, type BackboneRef, type OrtSession } from './onnx';

export interface ExtractorOptions {
  /** Output to read; default: backbone.json's, else the model's first. */
  outputNode?: string;
  /** Input to feed; default: backbone.json's, else the model's only input. */
  inputNode?: string;
  /** Preprocessing flags (beat backbone.json, which beats the model's shape and defaults). */
  overrides?: PreprocessSpec;
  threads?: number;
}

/** An open backbone ready to turn image or tensor batches into features. */
export class FeatureExtractor {
  private dim: number | null;

  private constructor(
    readonly file: string,
    private readonly session: OrtSession,
    readonly input: TensorInfo,
    readonly output: TensorInfo,
    /** Null only when the model takes no image-like input and nothing declares its size (tensor mode). */
    readonly preprocess: ResolvedPreprocess | null,
    private readonly preprocessError: NmlabError | null,
  ) {
    const rest = output.shape.slice(1);
    this.dim = rest.every((d) => typeof d === 'number') ? (rest as number[]).reduce((a, b) => a * b, 1) : null;
  }

  static async open(ref: BackboneRef, opts: ExtractorOptions = {}): Promise<FeatureExtractor> {
    const file = ref.onnxFile;
    const session = await openSession(file, opts.threads);
    try {
      const io = sessionIo(session);
      const inputName = opts.inputNode ?? ref.manifest?.input?.node;
      let input: TensorInfo | undefined;
      if (inputName !== undefined) {
        input = io.inputs.find((i) => i.name === inputName);
        if (!input) throw new NmlabError('BAD_REQUEST', `${file} has no input "${inputName}"; its inputs are ${io.inputs.map((i) => `"${i.name}"`).join(', ')}`);
      } else if (io.inputs.length === 1) input = io.inputs[0];
      else {
        throw new NmlabError('UNSUPPORTED', `${file} has ${io.inputs.length} inputs (${io.inputs.map((i) => i.name).join(', ')}); NMLab feeds one image tensor — name it with --input`);
      }
      if (input.type !== 'float32') throw new NmlabError('UNSUPPORTED', `${file}: input "${input.name}" is ${input.type}; NMLab feeds float32 images`);
      const outputName = opts.outputNode ?? ref.manifest?.output.node;
      const output = outputName === undefined ? io.outputs[0] : io.outputs.find((o) => o.name === outputName);
      if (!output) {
        const where = opts.outputNode === undefined && ref.manifest ? ` (named in ${ref.manifestFile})` : '';
        throw new NmlabError('BAD_REQUEST', `${file} has no output "${outputName}"${where}; its outputs are ${io.outputs.map((o) => `"${o.name}"`).join(', ')}`);
      }
      if (output.type !== 'float32') throw new NmlabError('UNSUPPORTED', `${file}: output "${output.name}" is ${output.type}; features must be float32`);
      let pre: ResolvedPreprocess | null = null;
      let preErr: NmlabError | null = null;
      try {
        pre = resolvePreprocess(ref.manifest?.preprocess, opts.overrides ?? {}, input, file);
      } catch (err) {
        // Tensor mode (--inputs) needs no preprocessing; report the problem only if images come.
        if (!(err instanceof NmlabError)) throw err;
        preErr = err;
      }
      const fx = new FeatureExtractor(file, session, input, output, pre, preErr);
      if (ref.manifest && fx.dim !== null && fx.dim !== ref.manifest.output.featureDim && output.name === ref.manifest.output.node) {
        throw new NmlabError('BAD_FILE', `${ref.manifestFile} says output "${output.name}" has ${ref.manifest.output.featureDim} features but ${file} gives ${fx.dim}`);
      }
      return fx;
    } catch (err) {
      await session.release();
      throw err;
    }
  }

  /** Features per sample, once known (from the static output shape or the first batch). */
  get featureDim(): number | null {
    return this.dim;
  }

  /** Resolved preprocessing; throws why it could not be resolved (e.g. no input size). */
  requirePreprocess(): ResolvedPreprocess {
    if (!this.preprocess) throw this.preprocessError ?? new NmlabError('INTERNAL', 'no preprocessing');
    return this.preprocess;
  }

  /** Run the model on an already preprocessed float32 batch of `dims` (batch first). */
  async runTensor(data: Float32Array, dims: number[]): Promise<Float32Array> {
    const n = dims[0];
    const expect = this.input.shape;
    if (expect.length && dims.length !== expect.length) {
      throw new NmlabError('BAD_REQUEST', `${this.file}: input "${this.input.name}" has ${expect.length} dims [${expect.join(', ')}] but the batch has ${dims.length} [${dims.join(', ')}]`);
    }
    dims.forEach((d, i) => {
      if (i > 0 && typeof expect[i] === 'number' && expect[i] !== d) {
        throw new NmlabError('BAD_REQUEST', `${this.file}: input "${this.input.name}" expects shape [${expect.join(', ')}] but got [${dims.join(', ')}] (dim ${i} is ${d}, not ${expect[i]}); check the size and layout`);
      }
    });
    const ort = await loadOrt();
    let out;
    try {
      const feeds = { [this.input.name]: new ort.Tensor('float32', data, dims) };
      out = await this.session.run(feeds, [this.output.name]);
    } catch (err) {
      const why = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      throw new NmlabError('BAD_REQUEST', `${this.file}: inference failed on a batch of shape [${dims.join(', ')}]: ${why}`);
    }
    const t = out[this.output.name];
    if (t.dims[0] !== n) throw new NmlabError('BAD_FILE', `${this.file}: output "${this.output.name}" has batch size ${t.dims[0]} for ${n} inputs; pick a per-sample output`);
    const d = t.dims.slice(1).reduce((a, b) => a * b, 1);
    if (this.dim === null) this.dim = d;
    else if (d !== this.dim) throw new NmlabError('BAD_FILE', `${this.file}: output "${this.output.name}" gave ${d} features per sample, expected ${this.dim}`);
    const data32 = t.data as Float32Array;
    // A NaN/Inf feature would silently poison every spectrum and probe downstream (DESIGN §7).
    checkFinite(data32, d, `${this.file} output "${this.output.name}"`);
    return data32;
  }

  /** Preprocess and run a batch of images (any sizes); returns n × featureDim. */
  async runImages(images: RawImage[]): Promise<Float32Array> {
    const p = this.requirePreprocess();
    const per = p.inputSize[0] * p.inputSize[1] * p.inputSize[2];
    const input = new Float32Array(images.length * per);
    images.forEach((img, i) => preprocessInto(img, p, input, i * per));
    return this.runTensor(input, batchDims(p, images.length));
  }

  /** Run one blank batch to learn the feature width of a symbolic output. */
  async probeFeatureDim(): Promise<number> {
    if (this.dim !== null) return this.dim;
    const p = this.requirePreprocess();
    await this.runTensor(new Float32Array(p.inputSize[0] * p.inputSize[1] * p.inputSize[2]), batchDims(p, 1));
    return this.dim!;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
