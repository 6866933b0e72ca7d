import { crc32 } from 'node:zlib';

/** Data records start at multiples of this (torch.save's alignment, so readers may map them in place). */
const ALIGN = 64;
// 1980-01-01 00:00 in DOS time: the same bytes for the same records.
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

/**
 * An uncompressed zip archive (the container torch.save writes), each record's data aligned to 64
 * bytes by padding its local header's extra field. Records under 4 GiB, fewer than 65536 of them.
 */
export function zipStore(records: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data } of records) {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data);
    const pad = (ALIGN - ((offset + 30 + nameBytes.length + 4) % ALIGN)) % ALIGN;
    const extra = new Uint8Array(4 + pad);
    // Extra field id "FB" (as PyTorch's writer), its size, then zeros.
    new DataView(extra.buffer).setUint16(0, 0x4246, true);
    new DataView(extra.buffer).setUint16(2, pad, true);
    const local = header(30, [
      [4, 0x04034b50], [2, 20], [2, 0], [2, 0], [2, 0], [2, DOS_DATE], [4, crc], [4, data.length], [4, data.length],
      [2, nameBytes.length], [2, extra.length],
    ]);
    parts.push(local, nameBytes, extra, data);
    const entry = header(46, [
      [4, 0x02014b50], [2, 20], [2, 20], [2, 0], [2, 0], [2, 0], [2, DOS_DATE], [4, crc], [4, data.length], [4, data.length],
      [2, nameBytes.length], [2, 0], [2, 0], [2, 0], [2, 0], [4, 0], [4, offset],
    ]);
    central.push(entry, nameBytes);
    offset += local.length + nameBytes.length + extra.length + data.length;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  const end = header(22, [
    [4, 0x06054b50], [2, 0], [2, 0], [2, records.length], [2, records.length], [4, centralSize], [4, offset], [2, 0],
  ]);
  return concat([...parts, ...central, end]);
}

/** Little-endian fields of the given byte widths. */
function header(length: number, fields: [2 | 4, number][]): Uint8Array {
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const [width, value] of fields) {
    if (width === 2) view.setUint16(at, value, true);
    else view.setUint32(at, value >>> 0, true);
    at += width;
  }
  return bytes;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
