/**
 * A minimal protocol-buffers *writer* (proto3 wire format), enough to serialise ONNX models
 * without a protobuf dependency. Wire types used: 0 (varint: int32/int64/enum/bool),
 * 1 (64-bit: double), 2 (length-delimited: string, bytes, sub-messages, packed repeated),
 * 5 (32-bit: float).
 *
 * Sub-messages are written by building them in their own writer and embedding the bytes
 * (`writer.message(field, sub.finish())`): simple, and fast enough for model-sized outputs
 * since tensors go in as one `bytes` copy.
 *
 * Reference: https://protobuf.dev/programming-guides/encoding/
 *
 * {@link ProtoReader} reads the same format back (ONNX models for src/core/onnx/decode.ts).
 */

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Accumulates one protobuf message; fields are written in call order. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, this.buf.length * 2));
  }

  private flush(): void {
    if (this.pos > 0) {
      this.chunks.push(this.buf.slice(0, this.pos));
      this.pos = 0;
    }
  }

  /** Raw varint of a non-negative safe integer, or of any int64 given as bigint (two's complement). */
  varint(value: number | bigint): this {
    this.reserve(10);
    if (typeof value === 'number' && value >= 0 && value <= 0x7fffffff) {
      let v = value;
      while (v > 0x7f) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.pos++] = v;
      return this;
    }
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`varint: ${value} is not a safe integer`);
    // Negative int64 values are encoded as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int32 / int64 / enum / bool field (negative values allowed). */
  int(field: number, value: number | bigint | boolean): this {
    this.tag(field, WIRE_VARINT);
    return this.varint(typeof value === 'boolean' ? (value ? 1 : 0) : value);
  }

  /** `float` field (32-bit). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_I32);
    this.reserve(4);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  /** `double` field (64-bit). */
  double(field: number, value: number): this {
    this.tag(field, WIRE_I64);
    this.reserve(8);
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  /** `bytes` or embedded-message field. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.flush();
    this.chunks.push(value);
    return this;
  }

  /** `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.bytes(field, this.encoder.encode(value));
  }

  /** Embedded message field, given the finished bytes of the sub-message. */
  message(field: number, value: Uint8Array): this {
    return this.bytes(field, value);
  }

  /** Packed repeated int32/int64 field. */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    const sub = new ProtoWriter();
    for (const v of values) sub.varint(v);
    return this.bytes(field, sub.finish());
  }

  /** Packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    const f = new Float32Array(values);
    return this.bytes(field, new Uint8Array(f.buffer));
  }

  /** The message's bytes. The writer should not be used afterwards. */
  finish(): Uint8Array {
    this.flush();
    let total = 0;
    for (const c of this.chunks) total += c.length;
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** One field as read from the wire: its number, wire type and payload. */
export interface ProtoField {
  field: number;
  wire: number;
  /** Varint value (wire 0); as bigint to keep all 64 bits. */
  varint: bigint;
  /** Payload of a length-delimited (2), 32-bit (5) or 64-bit (1) field. */
  bytes: Uint8Array;
}

/**
 * The matching *reader*: iterates the fields of one message. Sub-messages are read by
 * constructing a reader on a field's `bytes`.
 */
export class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  private varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new RangeError('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
  }

  /** The varints of a packed repeated field's payload. */
  *fieldsOfPacked(): Generator<bigint> {
    while (this.pos < this.buf.length) yield this.varint();
  }

  /** Every field of the message in wire order. */
  *fields(): Generator<ProtoField> {
    while (this.pos < this.buf.length) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      const empty = this.buf.subarray(0, 0);
      if (wire === WIRE_VARINT) {
        yield { field, wire, varint: this.varint(), bytes: empty };
      } else if (wire === WIRE_LEN) {
        const n = Number(this.varint());
        if (this.pos + n > this.buf.length) throw new RangeError('protobuf: truncated field');
        yield { field, wire, varint: 0n, bytes: this.buf.subarray(this.pos, this.pos + n) };
        this.pos += n;
      } else if (wire === WIRE_I32 || wire === WIRE_I64) {
        const n = wire === WIRE_I32 ? 4 : 8;
        yield { field, wire, varint: 0n, bytes: this.buf.subarray(this.pos, this.pos + n) };
        this.pos += n;
      } else {
        throw new RangeError(`protobuf: unsupported wire type ${wire}`);
      }
    }
  }
}

/** Signed int64 of a varint. */
export function int64Of(v: bigint): bigint {
  return BigInt.asIntN(64, v);
}

/** The values of a repeated integer field: packed (wire 2) or one per field (wire 0). */
export function readInts(f: ProtoField): bigint[] {
  if (f.wire === WIRE_VARINT) return [int64Of(f.varint)];
  const out: bigint[] = [];
  for (const g of new ProtoReader(f.bytes).fieldsOfPacked()) out.push(int64Of(g));
  return out;
}

/** The values of a repeated float field: packed or one per field. */
export function readFloats(f: ProtoField): number[] {
  const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= f.bytes.byteLength; i += 4) out.push(dv.getFloat32(i, true));
  return out;
}

/** The values of a repeated double field: packed or one per field. */
export function readDoubles(f: ProtoField): number[] {
  const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 8 <= f.bytes.byteLength; i += 8) out.push(dv.getFloat64(i, true));
  return out;
}
