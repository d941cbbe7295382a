/**
 * A small ONNX model *writer*: describe a graph in plain objects, get the bytes of a
 * `ModelProto` that onnxruntime (and any ONNX tool) loads. No protobuf dependency; the wire
 * encoding is in ./proto.ts.
 *
 * Uses in NMLab:
 * - the spectrum computes the float64 Gram matrix of a feature chunk with a one-node MatMul
 *   model run by onnxruntime-node (see src/core/spectrum/gram-ort.ts);
 * - exporting backbones NMLab trained (DESIGN §6: "backbones NMLab trained as ONNX") — Conv,
 *   BatchNormalization, Relu, Add, GlobalAveragePool, Flatten, Gemm: every operator is just a
 *   {@link NodeSpec} with typed {@link attr} values and weights as {@link TensorSpec}
 *   initializers, so no operator-specific code is needed here.
 *
 * Field numbers follow onnx/onnx.proto (IR version 8, the default here, pairs with opsets up to
 * 18; ORT 1.30 reads IR ≤ 11). Example:
 *
 * ```ts
 * const bytes = encodeModel({
 *   graph: {
 *     name: 'gram',
 *     inputs: [valueInfo('xt', 'float64', ['d', 'm']), valueInfo('x', 'float64', ['m', 'd'])],
 *     outputs: [valueInfo('g', 'float64', ['d', 'd'])],
 *     nodes: [{ opType: 'MatMul', inputs: ['xt', 'x'], outputs: ['g'] }],
 *   },
 * });
 * const session = await InferenceSession.create(bytes);
 * ```
 */
import { NmlabError } from '../../shared/errors';
import { ProtoWriter } from './proto';

/** ONNX TensorProto.DataType codes of the element types NMLab uses. */
export const ONNX_DATA_TYPE = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
} as const;

/** An element type, by NMLab's (numpy-like) name. */
export type OnnxElemType = keyof typeof ONNX_DATA_TYPE;

/** A constant tensor (initializer or attribute value). Data is stored as `raw_data`, little-endian. */
export interface TensorSpec {
  name: string;
  dataType: OnnxElemType;
  dims: readonly number[];
  /** Elements in C order; the typed array must match dataType (e.g. Float32Array for float32). */
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array;
  docString?: string;
}

/**
 * A graph input/output/intermediate with its type. Each dimension is a fixed size (number), a
 * symbolic name (string, e.g. 'batch'), or null for unknown.
 */
export interface ValueInfoSpec {
  name: string;
  elemType: OnnxElemType;
  shape: readonly (number | string | null)[];
  docString?: string;
}

/** A typed attribute value: build with {@link attr}. */
export type AttrValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number | bigint }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: TensorSpec }
  | { type: 'graph'; value: GraphSpec }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'ints'; value: readonly (number | bigint)[] }
  | { type: 'strings'; value: readonly string[] };

/**
 * Attribute constructors. ONNX distinguishes FLOAT from INT attributes strictly (e.g.
 * BatchNormalization's `epsilon` must be a float even when it is 1), so the type is explicit.
 */
export const attr = {
  float: (value: number): AttrValue => ({ type: 'float', value }),
  int: (value: number | bigint): AttrValue => ({ type: 'int', value }),
  string: (value: string): AttrValue => ({ type: 'string', value }),
  tensor: (value: TensorSpec): AttrValue => ({ type: 'tensor', value }),
  graph: (value: GraphSpec): AttrValue => ({ type: 'graph', value }),
  floats: (value: readonly number[]): AttrValue => ({ type: 'floats', value }),
  ints: (value: readonly (number | bigint)[]): AttrValue => ({ type: 'ints', value }),
  strings: (value: readonly string[]): AttrValue => ({ type: 'strings', value }),
};

/** One operator application. */
export interface NodeSpec {
  opType: string;
  /** Input value names; '' marks an omitted optional input. */
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  /** Operator domain; '' (default) is the standard ai.onnx domain. */
  domain?: string;
  attributes?: Readonly<Record<string, AttrValue>>;
  docString?: string;
}

/** A computation graph. Nodes must be in topological order (ONNX requires it). */
export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
  initializers?: readonly TensorSpec[];
  /** Optional types of intermediate values (helps tools; not required by ORT). */
  valueInfo?: readonly ValueInfoSpec[];
  docString?: string;
}

/** A whole model. */
export interface ModelSpec {
  graph: GraphSpec;
  /** Default opset of the ai.onnx domain; 17 unless given. */
  opsetVersion?: number;
  /** Additional operator sets, e.g. `{ domain: 'com.microsoft', version: 1 }`. */
  extraOpsets?: readonly { domain: string; version: number }[];
  /** ONNX IR version; 8 unless given. */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  modelVersion?: number;
  docString?: string;
  /** Stored as ModelProto.metadata_props (e.g. NMLab's backbone id, noise provenance). */
  metadata?: Readonly<Record<string, string>>;
}

/** Shorthand for a {@link ValueInfoSpec}. */
export function valueInfo(name: string, elemType: OnnxElemType, shape: readonly (number | string | null)[]): ValueInfoSpec {
  return { name, elemType, shape };
}

const TYPED_FOR: Record<OnnxElemType, string[]> = {
  float32: ['Float32Array'],
  float64: ['Float64Array'],
  int32: ['Int32Array'],
  int64: ['BigInt64Array'],
  uint8: ['Uint8Array'],
  int8: ['Int8Array'],
  bool: ['Uint8Array'],
  float16: ['Uint16Array'],
};

// ---- encoders (field numbers from onnx/onnx.proto) ----

function encodeTensor(t: TensorSpec): Uint8Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) throw new NmlabError('BAD_REQUEST', `ONNX tensor "${t.name}": dims [${t.dims.join(', ')}] need ${count} elements, data has ${t.data.length}`);
  if (!TYPED_FOR[t.dataType].includes(t.data.constructor.name)) {
    throw new NmlabError('BAD_REQUEST', `ONNX tensor "${t.name}": dataType ${t.dataType} needs a ${TYPED_FOR[t.dataType].join('/')}, got ${t.data.constructor.name}`);
  }
  const w = new ProtoWriter();
  if (t.dims.length > 0) w.packedInts(1, t.dims); // dims
  w.int(2, ONNX_DATA_TYPE[t.dataType]); // data_type
  w.string(8, t.name); // name
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)); // raw_data
  if (t.docString) w.string(12, t.docString);
  return w.finish();
}

function encodeValueInfo(v: ValueInfoSpec): Uint8Array {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.int(1, d); // dim_value
    else if (typeof d === 'string') dim.string(2, d); // dim_param
    shape.message(1, dim.finish()); // TensorShapeProto.dim
  }
  const tensorType = new ProtoWriter();
  tensorType.int(1, ONNX_DATA_TYPE[v.elemType]); // elem_type
  tensorType.message(2, shape.finish()); // shape
  const type = new ProtoWriter();
  type.message(1, tensorType.finish()); // TypeProto.tensor_type
  const w = new ProtoWriter();
  w.string(1, v.name);
  w.message(2, type.finish());
  if (v.docString) w.string(3, v.docString);
  return w.finish();
}

// AttributeProto.AttributeType
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7, strings: 8 } as const;

function encodeAttribute(name: string, a: AttrValue): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.message(5, encodeTensor(a.value));
      break;
    case 'graph':
      w.message(6, encodeGraph(a.value));
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      break;
    case 'ints':
      w.packedInts(8, a.value);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      break;
  }
  w.int(20, ATTR_TYPE[a.type]); // type
  return w.finish();
}

function encodeNode(n: NodeSpec): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.docString) w.string(6, n.docString);
  if (n.domain) w.string(7, n.domain);
  return w.finish();
}

function encodeGraph(g: GraphSpec): Uint8Array {
  checkGraph(g);
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers ?? []) w.message(5, encodeTensor(t));
  if (g.docString) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  for (const v of g.valueInfo ?? []) w.message(13, encodeValueInfo(v));
  return w.finish();
}

/**
 * Catches the mistakes that otherwise surface as opaque ORT load errors: a value used before
 * it is produced (nodes out of order, a typo), a name produced twice, an output never produced.
 */
function checkGraph(g: GraphSpec): void {
  const known = new Set<string>();
  for (const v of g.inputs) known.add(v.name);
  for (const t of g.initializers ?? []) known.add(t.name);
  for (const [i, n] of g.nodes.entries()) {
    const label = `graph "${g.name}", node ${i} (${n.opType}${n.name ? ` "${n.name}"` : ''})`;
    for (const inp of n.inputs) {
      if (inp !== '' && !known.has(inp)) throw new NmlabError('BAD_REQUEST', `ONNX ${label}: input "${inp}" is not a graph input, initializer or earlier node output`);
    }
    for (const out of n.outputs) {
      if (out === '') continue;
      if (known.has(out)) throw new NmlabError('BAD_REQUEST', `ONNX ${label}: output "${out}" is already defined`);
      known.add(out);
    }
  }
  for (const o of g.outputs) {
    if (!known.has(o.name)) throw new NmlabError('BAD_REQUEST', `ONNX graph "${g.name}": output "${o.name}" is never produced`);
  }
}

/** Serialises a model to ONNX protobuf bytes (loadable by `InferenceSession.create(bytes)`). */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, spec.irVersion ?? 8); // ir_version
  w.string(2, spec.producerName ?? 'nmlab'); // producer_name
  if (spec.producerVersion) w.string(3, spec.producerVersion);
  if (spec.modelVersion !== undefined) w.int(5, spec.modelVersion);
  if (spec.docString) w.string(6, spec.docString);
  w.message(7, encodeGraph(spec.graph)); // graph
  const opsets = [{ domain: '', version: spec.opsetVersion ?? 17 }, ...(spec.extraOpsets ?? [])];
  for (const o of opsets) {
    const os = new ProtoWriter();
    if (o.domain) os.string(1, o.domain);
    os.int(2, o.version);
    w.message(8, os.finish()); // opset_import
  }
  for (const [key, value] of Object.entries(spec.metadata ?? {})) {
    const kv = new ProtoWriter();
    kv.string(1, key);
    kv.string(2, value);
    w.message(14, kv.finish()); // metadata_props
  }
  return w.finish();
}
