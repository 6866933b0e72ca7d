// The 32x32 colour images of `npm run bench:epoch` (no CIFAR-10 is reachable offline): a folder of
// PNG files in ImageFolder layout (one sub-folder per class), the same for a given seed and count.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '@moco/moco';
import sharp from 'sharp';

const SIDE = 32;
const CLASSES = ['disc', 'square', 'ring', 'bar'] as const;

/**
 * One image: a linear gradient between two random colours in a random direction, a shape of the
 * class in a third colour at a random place and size (0.25 to 0.6 of the side), and noise of +-12
 * per value, so that crops, colour jitter and blur all have something to change.
 */
function drawImage(rng: Rng, shape: (typeof CLASSES)[number]): Uint8Array {
  const colour = () => [rng.int(256), rng.int(256), rng.int(256)];
  const [from, to, ink] = [colour(), colour(), colour()];
  const angle = rng.uniform(0, 2 * Math.PI);
  const [dx, dy] = [Math.cos(angle) / SIDE, Math.sin(angle) / SIDE];
  const radius = (rng.uniform(0.25, 0.6) * SIDE) / 2;
  const [cx, cy] = [rng.uniform(radius, SIDE - radius), rng.uniform(radius, SIDE - radius)];
  const inside = (x: number, y: number) => {
    const [u, v] = [x - cx, y - cy];
    const r = Math.hypot(u, v);
    if (shape === 'disc') return r <= radius;
    if (shape === 'ring') return r <= radius && r >= radius * 0.6;
    if (shape === 'square') return Math.abs(u) <= radius * 0.8 && Math.abs(v) <= radius * 0.8;
    return Math.abs(v) <= radius * 0.3 && Math.abs(u) <= radius;
  };
  const pixels = new Uint8Array(SIDE * SIDE * 3);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + (x - SIDE / 2) * dx + (y - SIDE / 2) * dy));
      for (let c = 0; c < 3; c++) {
        const base = inside(x + 0.5, y + 0.5) ? ink[c]! : from[c]! + (to[c]! - from[c]!) * t;
        pixels[(y * SIDE + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(base + rng.uniform(-12, 12))));
      }
    }
  }
  return pixels;
}

/** Writes `count` images (classes in turn) under `dir`/<class>/<n>.png, drawn from Rng(`seed`). */
export async function writeColourImages(dir: string, count: number, seed: number): Promise<void> {
  const rng = new Rng(`colour-images:${seed}`);
  await Promise.all(CLASSES.map((name) => mkdir(join(dir, name), { recursive: true })));
  for (let i = 0; i < count; i++) {
    const name = CLASSES[i % CLASSES.length]!;
    const png = await sharp(drawImage(rng, name), { raw: { width: SIDE, height: SIDE, channels: 3 } }).png().toBuffer();
    await writeFile(join(dir, name, `${String(i).padStart(6, '0')}.png`), png);
  }
}
