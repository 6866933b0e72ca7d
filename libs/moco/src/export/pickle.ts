/**
 * A pickle (protocol 2) writer for the values a PyTorch checkpoint holds: dicts, OrderedDicts, lists,
 * strings, numbers, booleans, None and tensors whose storages are persistent ids (torch.save's
 * layout). Only the globals torch.load(weights_only=True) allows are referenced (PyTorch 2.x; 1.13's
 * weights-only loader lacks the float opcode the preprocessing needs, its default loader reads it).
 */
export type PickleValue =
  | null
  | boolean
  | number
  | string
  | PickleValue[]
  | { [key: string]: PickleValue }
  | OrderedDict
  | TensorRef;

/** collections.OrderedDict (a state_dict). */
export class OrderedDict {
  constructor(readonly entries: [string, PickleValue][]) {}
}

/** A contiguous tensor over the whole of storage `key` (the record `data/<key>`). */
export class TensorRef {
  constructor(
    readonly key: string,
    readonly dtype: 'float32' | 'int64',
    readonly shape: number[],
  ) {}
}

const op = {
  PROTO: 0x80,
  STOP: 0x2e,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BININT: 0x4a,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  MARK: 0x28,
  SETITEMS: 0x75,
  APPENDS: 0x65,
  TUPLE: 0x74,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  BINPERSID: 0x51,
} as const;

export function pickle(value: PickleValue): Uint8Array {
  const out: number[] = [op.PROTO, 2];
  const bytes = (b: Uint8Array | number[]) => {
    for (const x of b) out.push(x);
  };
  const str = (s: string) => {
    const utf8 = new TextEncoder().encode(s);
    out.push(op.BINUNICODE);
    bytes(uint32(utf8.length));
    bytes(utf8);
  };
  const global = (module: string, name: string) => {
    out.push(op.GLOBAL);
    bytes(new TextEncoder().encode(`${module}\n${name}\n`));
  };
  const int = (n: number) => {
    if (n >= -(2 ** 31) && n < 2 ** 31) {
      out.push(op.BININT);
      bytes(new Uint8Array(new Int32Array([n]).buffer));
    } else {
      // Two's complement little-endian, 8 bytes (numbers above 2^53 are not exact in JavaScript anyway).
      out.push(op.LONG1, 8);
      bytes(new Uint8Array(new BigInt64Array([BigInt(n)]).buffer));
    }
  };
  const tuple = (items: (() => void)[]) => {
    if (items.length === 0) return void out.push(op.EMPTY_TUPLE);
    out.push(op.MARK);
    for (const item of items) item();
    out.push(op.TUPLE);
  };
  const write = (v: PickleValue): void => {
    if (v === null) out.push(op.NONE);
    else if (typeof v === 'boolean') out.push(v ? op.NEWTRUE : op.NEWFALSE);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) int(v);
      else {
        out.push(op.BINFLOAT);
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, v, false);
        bytes(b);
      }
    } else if (typeof v === 'string') str(v);
    else if (Array.isArray(v)) {
      out.push(op.EMPTY_LIST);
      if (v.length === 0) return;
      out.push(op.MARK);
      v.forEach(write);
      out.push(op.APPENDS);
    } else if (v instanceof OrderedDict) {
      global('collections', 'OrderedDict');
      out.push(op.EMPTY_TUPLE, op.REDUCE);
      setItems(v.entries);
    } else if (v instanceof TensorRef) {
      // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
      global('torch._utils', '_rebuild_tensor_v2');
      const strides = v.shape.map((_, i) => v.shape.slice(i + 1).reduce((a, b) => a * b, 1));
      const numel = v.shape.reduce((a, b) => a * b, 1);
      tuple([
        () => {
          tuple([() => str('storage'), () => global('torch', v.dtype === 'float32' ? 'FloatStorage' : 'LongStorage'), () => str(v.key), () => str('cpu'), () => int(numel)]);
          out.push(op.BINPERSID);
        },
        () => int(0),
        () => tuple(v.shape.map((d) => () => int(d))),
        () => tuple(strides.map((d) => () => int(d))),
        () => out.push(op.NEWFALSE),
        () => write(new OrderedDict([])),
      ]);
      out.push(op.REDUCE);
    } else {
      out.push(op.EMPTY_DICT);
      setItems(Object.entries(v));
    }
  };
  const setItems = (entries: [string, PickleValue][]) => {
    if (entries.length === 0) return;
    out.push(op.MARK);
    for (const [k, val] of entries) {
      str(k);
      write(val);
    }
    out.push(op.SETITEMS);
  };
  write(value);
  out.push(op.STOP);
  return Uint8Array.from(out);
}

function uint32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
