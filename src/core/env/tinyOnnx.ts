/**
 * A hand-encoded ONNX model, so the doctor can prove onnxruntime really runs a session
 * without shipping a model file. The model is one MatMul node, Y = A·B with A: 2×3 and
 * B: 3×2 float32. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto,
 * NodeProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A protobuf field: wire type 0 (varint) for numbers, 2 (length-delimited) for bytes/strings. */
function field(num: number, value: number | string | number[]): number[] {
  if (typeof value === 'number') return [...varint((num << 3) | 0), ...varint(value)];
  const bytes = typeof value === 'string' ? [...new TextEncoder().encode(value)] : value;
  return [...varint((num << 3) | 2), ...varint(bytes.length), ...bytes];
}

const FLOAT = 1;

function tensorValueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => field(1, field(1, d))); // TensorShapeProto.dim { dim_value }
  const tensorType = [...field(1, FLOAT), ...field(2, shape)]; // TypeProto.Tensor { elem_type, shape }
  return [...field(1, name), ...field(2, field(1, tensorType))]; // ValueInfoProto { name, type { tensor_type } }
}

/** The serialised ModelProto bytes of Y = MatMul(A, B). */
export function tinyMatMulModel(): Uint8Array {
  const node = [...field(1, 'A'), ...field(1, 'B'), ...field(2, 'Y'), ...field(3, 'matmul'), ...field(4, 'MatMul')];
  const graph = [
    ...field(1, node),
    ...field(2, 'nmlab-doctor'),
    ...field(11, tensorValueInfo('A', [2, 3])),
    ...field(11, tensorValueInfo('B', [3, 2])),
    ...field(12, tensorValueInfo('Y', [2, 2])),
  ];
  const opset = [...field(1, ''), ...field(2, 13)];
  const model = [...field(1, 8), ...field(2, 'nmlab'), ...field(7, graph), ...field(8, opset)];
  return Uint8Array.from(model);
}
