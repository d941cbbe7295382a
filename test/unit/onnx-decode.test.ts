// decodeModel must read the same weights from a Node Buffer (readFileSync) as from a plain
// Uint8Array: a Buffer's slice() is a view, so a "copy" made with it read from the file's start.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel } from '../../src/core/onnx/decode';

describe('decodeModel', () => {
  it('reads the same initializers from a Buffer as from a Uint8Array', () => {
    const buffer = readFileSync(join(__dirname, '../fixtures/onnx/tiny_resnet.onnx'));
    const plain = Uint8Array.from(buffer);
    const a = decodeModel(buffer).graph.initializers ?? [];
    const b = decodeModel(plain).graph.initializers ?? [];
    expect(a.length).toBeGreaterThan(3);
    expect(a.map((t) => t.name)).toEqual(b.map((t) => t.name));
    for (let i = 0; i < a.length; i++) expect(Array.from(a[i].data as ArrayLike<number>)).toEqual(Array.from(b[i].data as ArrayLike<number>));
    // Different tensors hold different values (the bug made every one start at byte 0 of the file).
    const firsts = new Set(a.filter((t) => t.data.length > 1).map((t) => Number(t.data[0])));
    expect(firsts.size).toBeGreaterThan(1);
  });
});
