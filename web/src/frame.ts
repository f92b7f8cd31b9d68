// Reader of the server's binary frames (see modalchorus/server/frames.py for the layout).

export type Column = Float32Array | Int16Array | Int32Array | Uint8Array | Uint32Array | string[];

export interface Frame {
  n: number;
  meta: Record<string, unknown>;
  columns: Record<string, Column>;
  nbytes: number;
}

interface ColumnSpec {
  name: string;
  dtype: string;
  offset: number;
  nbytes: number;
}

const TYPED = {
  float32: Float32Array,
  int16: Int16Array,
  int32: Int32Array,
  uint8: Uint8Array,
  uint32: Uint32Array,
} as const;

function utf8Column(buffer: ArrayBuffer, spec: ColumnSpec, n: number): string[] {
  const offsets = new Uint32Array(buffer, spec.offset, n + 1);
  const bytes = new Uint8Array(buffer, spec.offset + 4 * (n + 1), offsets[n]);
  const decoder = new TextDecoder();
  const out = new Array<string>(n);
  const text = decoder.decode(bytes);
  if (text.length === bytes.length) {
    // ASCII only (the usual case): byte offsets are string offsets, one decode in all.
    for (let i = 0; i < n; i++) out[i] = text.slice(offsets[i], offsets[i + 1]);
  } else {
    for (let i = 0; i < n; i++) out[i] = decoder.decode(bytes.subarray(offsets[i], offsets[i + 1]));
  }
  return out;
}

export function decodeFrame(buffer: ArrayBuffer): Frame {
  const head = new DataView(buffer);
  const magic = new TextDecoder().decode(new Uint8Array(buffer, 0, 4));
  if (magic !== 'MCF1') throw new Error('not a ModalChorus frame');
  const headerLength = head.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLength)));
  const n: number = header.n;
  const columns: Record<string, Column> = {};
  for (const spec of header.columns as ColumnSpec[]) {
    if (spec.dtype === 'utf8') {
      columns[spec.name] = utf8Column(buffer, spec, n);
    } else {
      const Typed = TYPED[spec.dtype as keyof typeof TYPED];
      if (!Typed) throw new Error(`unknown column type ${spec.dtype}`);
      columns[spec.name] = new Typed(buffer, spec.offset, n);
    }
  }
  return { n, meta: header.meta ?? {}, columns, nbytes: buffer.byteLength };
}
