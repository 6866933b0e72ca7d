import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, type DecodeTarget } from './decode-image.js';
import { DatasetError } from './dataset-errors.js';
import { decodePlainPng } from './plain-png.js';
import { encodeImage } from './test-fixtures.js';

const W = 12;
const H = 10;
const target = (channels: 1 | 3, size = { width: W, height: H }): DecodeTarget => ({ size, channels, maxPixels: 1 << 20 });
// Smooth gradients and noise, so that the encoder uses several PNG row filters.
const pixels = (channels: number) =>
  new Uint8Array(W * H * channels).map((_, i) => (i % 7 === 0 ? (i * 7919) % 256 : Math.floor(i / channels) % 256));

/** What sharp decodes (the path every other image takes). */
async function viaSharp(png: Buffer, channels: 1 | 3): Promise<Uint8Array> {
  return new Uint8Array(await sharp(png).removeAlpha().toColourspace(channels === 1 ? 'b-w' : 'srgb').raw().toBuffer());
}

describe('decodePlainPng', () => {
  it.each([3, 1] as const)('gives the bytes sharp gives for a plain %i-channel PNG, at any compression', async (channels) => {
    const raw = pixels(channels);
    for (const compressionLevel of [0, 6, 9]) {
      const base = sharp(raw, { raw: { width: W, height: H, channels } });
      const png = await (channels === 1 ? base.toColourspace('b-w') : base).png({ compressionLevel, adaptiveFiltering: true }).toBuffer();
      const decoded = decodePlainPng(png, target(channels));
      expect(decoded, `compression ${compressionLevel}`).toBeDefined();
      expect(decoded).toMatchObject({ width: W, height: H, channels });
      expect(Array.from(decoded!.data)).toEqual(Array.from(await viaSharp(png, channels)));
      expect(Array.from(decoded!.data)).toEqual(Array.from(raw));
    }
  });

  it('takes the native size when the target has none', async () => {
    const png = await encodeImage(pixels(3), { width: W, height: H, channels: 3 });
    expect(decodePlainPng(png, { channels: 3, maxPixels: 1 << 20 })).toMatchObject({ width: W, height: H });
  });

  it('leaves to sharp whatever it would not decode to the same bytes', async () => {
    const rgb = pixels(3);
    const raw = () => sharp(rgb, { raw: { width: W, height: H, channels: 3 } });
    const rgbPng = await raw().png().toBuffer();
    const cases: [string, Buffer, DecodeTarget][] = [
      ['another size (resized)', rgbPng, target(3, { width: 8, height: 8 })],
      ['other channels (converted)', rgbPng, target(1)],
      ['alpha', await sharp(new Uint8Array(W * H * 4).fill(200), { raw: { width: W, height: H, channels: 4 } }).png().toBuffer(), target(3)],
      ['16-bit', await raw().toColourspace('rgb16').png().toBuffer(), target(3)],
      ['a palette', await raw().png({ palette: true }).toBuffer(), target(3)],
      ['interlaced', await raw().png({ progressive: true }).toBuffer(), target(3)],
      ['a colour profile', await raw().withIccProfile('p3').png().toBuffer(), target(3)],
      ['over the pixel limit', rgbPng, { ...target(3), maxPixels: W * H - 1 }],
      ['truncated', rgbPng.subarray(0, rgbPng.length - 20), target(3)],
      ['a JPEG', await raw().jpeg().toBuffer(), target(3)],
    ];
    for (const [what, png, t] of cases) expect(decodePlainPng(png, t), what).toBeUndefined();
  });

  it('a corrupt plain PNG still fails as unreadable (through sharp)', async () => {
    const png = Buffer.from(await encodeImage(pixels(3), { width: W, height: H, channels: 3 }));
    // Flip a byte of the compressed data: the CRC no longer matches.
    png[png.indexOf('IDAT') + 10]! ^= 0xff;
    expect(decodePlainPng(png, target(3))).toBeUndefined();
    await expect(decodeImage(png, 'broken.png', target(3))).rejects.toBeInstanceOf(DatasetError);
  });
});
