/**
 * Reads ONNX `ModelProto` bytes back into the plain objects of ./builder.ts, so a model
 * exported by PyTorch (or by NMLab) can be inspected, rewritten — e.g. into a training graph
 * by ./autodiff — and encoded again with {@link encodeModel}.
 *
 * Field numbers follow onnx/onnx.proto. Tensors stored in external files, sparse
 * initializers and string tensors are refused with a message (NMLab's models never use them).
 */
import { NmlabError } from '../../shared/errors';
import { ONNX_DATA_TYPE, type AttrValue, type GraphSpec, type ModelSpec, type NodeSpec, type OnnxElemType, type TensorSpec, type ValueInfoSpec } from './builder';
import { ProtoReader, int64Of, readDoubles, readFloats, readInts, type ProtoField } from './proto';

const ELEM_OF_CODE = new Map<number, OnnxElemType>(Object.entries(ONNX_DATA_TYPE).map(([k, v]) => [v, k as OnnxElemType]));
const text = new TextDecoder();

function elemOf(code: number, where: string): OnnxElemType {
  const t = ELEM_OF_CODE.get(code);
  if (!t) throw new NmlabError('UNSUPPORTED', `ONNX ${where}: element type ${code} is not supported by NMLab (float32/64, float16, int8/32/64, uint8, bool are)`);
  return t;
}

function typedFromRaw(type: OnnxElemType, raw: Uint8Array): TensorSpec['data'] {
  // An aligned copy: raw_data sits at any offset of the file. `new Uint8Array(raw)` copies even
  // when raw is a Node Buffer, whose slice() is a view of the same memory.
  const copy = new Uint8Array(raw);
  const b = copy.buffer;
  switch (type) {
    case 'float32':
      return new Float32Array(b, 0, copy.byteLength / 4);
    case 'float64':
      return new Float64Array(b, 0, copy.byteLength / 8);
    case 'int32':
      return new Int32Array(b, 0, copy.byteLength / 4);
    case 'int64':
      return new BigInt64Array(b, 0, copy.byteLength / 8);
    case 'int8':
      return new Int8Array(b);
    case 'float16':
      return new Uint16Array(b, 0, copy.byteLength / 2); // the raw half-precision bits
    default:
      return copy;
  }
}

function decodeTensor(bytes: Uint8Array): TensorSpec {
  const dims: number[] = [];
  let code = 0;
  let name = '';
  let raw: Uint8Array | null = null;
  const floats: number[] = [];
  const ints: bigint[] = [];
  const doubles: number[] = [];
  let docString: string | undefined;
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) dims.push(...readInts(f).map(Number));
    else if (f.field === 2) code = Number(f.varint);
    else if (f.field === 8) name = text.decode(f.bytes);
    else if (f.field === 9) raw = f.bytes;
    else if (f.field === 4) floats.push(...(f.wire === 5 ? readFloats(f) : readFloats(f)));
    else if (f.field === 5 || f.field === 7) ints.push(...readInts(f));
    else if (f.field === 10) doubles.push(...readDoubles(f));
    else if (f.field === 12) docString = text.decode(f.bytes);
    else if (f.field === 13 || f.field === 14) throw new NmlabError('UNSUPPORTED', `ONNX tensor "${name}" keeps its data in an external file; save the model with its weights inside (onnx.save(..., save_as_external_data=False))`);
    else if (f.field === 6) throw new NmlabError('UNSUPPORTED', `ONNX tensor "${name}" holds strings, which NMLab does not read`);
  }
  const dataType = elemOf(code, `tensor "${name}"`);
  let data: TensorSpec['data'];
  if (raw) data = typedFromRaw(dataType, raw);
  else if (dataType === 'float32') data = Float32Array.from(floats);
  else if (dataType === 'float64') data = Float64Array.from(doubles);
  else if (dataType === 'int64') data = BigInt64Array.from(ints);
  else if (dataType === 'int32') data = Int32Array.from(ints, Number);
  else if (dataType === 'int8') data = Int8Array.from(ints, Number);
  else data = Uint8Array.from(ints, Number); // uint8, bool, float16 bits are stored in int32_data
  return { name, dataType, dims, data, ...(docString ? { docString } : {}) };
}

function decodeValueInfo(bytes: Uint8Array): ValueInfoSpec {
  let name = '';
  let elemType: OnnxElemType = 'float32';
  const shape: (number | string | null)[] = [];
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) name = text.decode(f.bytes);
    else if (f.field === 2) {
      for (const t of new ProtoReader(f.bytes).fields()) {
        if (t.field !== 1) continue; // only tensor types
        for (const tt of new ProtoReader(t.bytes).fields()) {
          if (tt.field === 1) elemType = elemOf(Number(tt.varint), `value "${name}"`);
          else if (tt.field === 2) {
            for (const d of new ProtoReader(tt.bytes).fields()) {
              if (d.field !== 1) continue;
              let dim: number | string | null = null;
              for (const x of new ProtoReader(d.bytes).fields()) {
                if (x.field === 1) dim = Number(int64Of(x.varint));
                else if (x.field === 2) dim = text.decode(x.bytes);
              }
              shape.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, elemType, shape };
}

function decodeAttribute(bytes: Uint8Array): [string, AttrValue] {
  let name = '';
  let type = 0;
  const byField = new Map<number, ProtoField[]>();
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) name = text.decode(f.bytes);
    else if (f.field === 20) type = Number(f.varint);
    else byField.set(f.field, [...(byField.get(f.field) ?? []), f]);
  }
  const one = (k: number): ProtoField | undefined => byField.get(k)?.[0];
  const all = (k: number): ProtoField[] => byField.get(k) ?? [];
  switch (type) {
    case 1:
      return [name, { type: 'float', value: one(2) ? readFloats(one(2) as ProtoField)[0] : 0 }];
    case 2:
      return [name, { type: 'int', value: Number(int64Of(one(3)?.varint ?? 0n)) }];
    case 3:
      return [name, { type: 'string', value: text.decode(one(4)?.bytes ?? new Uint8Array()) }];
    case 4:
      return [name, { type: 'tensor', value: decodeTensor(one(5)?.bytes ?? new Uint8Array()) }];
    case 5:
      return [name, { type: 'graph', value: decodeGraph(one(6)?.bytes ?? new Uint8Array()) }];
    case 6:
      return [name, { type: 'floats', value: all(7).flatMap(readFloats) }];
    case 7:
      return [name, { type: 'ints', value: all(8).flatMap(readInts).map(Number) }];
    case 8:
      return [name, { type: 'strings', value: all(9).map((f) => text.decode(f.bytes)) }];
    default:
      throw new NmlabError('UNSUPPORTED', `ONNX attribute "${name}" has type ${type}, which NMLab does not read`);
  }
}

function decodeNode(bytes: Uint8Array): NodeSpec {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const attributes: Record<string, AttrValue> = {};
  let opType = '';
  let name: string | undefined;
  let domain: string | undefined;
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) inputs.push(text.decode(f.bytes));
    else if (f.field === 2) outputs.push(text.decode(f.bytes));
    else if (f.field === 3) name = text.decode(f.bytes);
    else if (f.field === 4) opType = text.decode(f.bytes);
    else if (f.field === 5) {
      const [k, v] = decodeAttribute(f.bytes);
      attributes[k] = v;
    } else if (f.field === 7) domain = text.decode(f.bytes);
  }
  return { opType, inputs, outputs, attributes, ...(name ? { name } : {}), ...(domain ? { domain } : {}) };
}

function decodeGraph(bytes: Uint8Array): GraphSpec {
  const nodes: NodeSpec[] = [];
  const initializers: TensorSpec[] = [];
  const inputs: ValueInfoSpec[] = [];
  const outputs: ValueInfoSpec[] = [];
  const valueInfo: ValueInfoSpec[] = [];
  let name = '';
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) nodes.push(decodeNode(f.bytes));
    else if (f.field === 2) name = text.decode(f.bytes);
    else if (f.field === 5) initializers.push(decodeTensor(f.bytes));
    else if (f.field === 11) inputs.push(decodeValueInfo(f.bytes));
    else if (f.field === 12) outputs.push(decodeValueInfo(f.bytes));
    else if (f.field === 13) valueInfo.push(decodeValueInfo(f.bytes));
    else if (f.field === 15) throw new NmlabError('UNSUPPORTED', `ONNX graph "${name}" has sparse initializers, which NMLab does not read`);
  }
  return { name, nodes, initializers, inputs, outputs, valueInfo };
}

/** Decodes ONNX model bytes. Graph inputs that are also initializers (IR < 4 style) stay listed. */
export function decodeModel(bytes: Uint8Array): ModelSpec {
  let graph: GraphSpec | null = null;
  let opsetVersion = 1;
  const extraOpsets: { domain: string; version: number }[] = [];
  const metadata: Record<string, string> = {};
  let irVersion = 8;
  let producerName: string | undefined;
  let docString: string | undefined;
  for (const f of new ProtoReader(bytes).fields()) {
    if (f.field === 1) irVersion = Number(f.varint);
    else if (f.field === 2) producerName = text.decode(f.bytes);
    else if (f.field === 6) docString = text.decode(f.bytes);
    else if (f.field === 7) graph = decodeGraph(f.bytes);
    else if (f.field === 8) {
      let domain = '';
      let version = 1;
      for (const o of new ProtoReader(f.bytes).fields()) {
        if (o.field === 1) domain = text.decode(o.bytes);
        else if (o.field === 2) version = Number(o.varint);
      }
      if (domain === '' || domain === 'ai.onnx') opsetVersion = version;
      else extraOpsets.push({ domain, version });
    } else if (f.field === 14) {
      let key = '';
      let value = '';
      for (const o of new ProtoReader(f.bytes).fields()) {
        if (o.field === 1) key = text.decode(o.bytes);
        else if (o.field === 2) value = text.decode(o.bytes);
      }
      metadata[key] = value;
    }
  }
  if (!graph) throw new NmlabError('BAD_FILE', 'ONNX model has no graph: is this an .onnx file?');
  return { graph, opsetVersion, extraOpsets, irVersion, metadata, ...(producerName ? { producerName } : {}), ...(docString ? { docString } : {}) };
}
