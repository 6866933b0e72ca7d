import seedrandom from 'seedrandom';

/** The serialisable state of an {@link Rng}: enough to continue the exact same sequence. */
export interface RngState {
  alea: { c: number; s0: number; s1: number; s2: number };
  /** Box-Muller makes normals in pairs; the spare one is part of the state. */
  spareNormal: number | null;
}

/**
 * Seeded random numbers for everything the training draws on the JS side (augmentation parameters,
 * shuffles, key permutations for shuffle-BN), so a run is reproducible and resumable bit for bit.
 */
export class Rng {
  private readonly prng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  private spareNormal: number | null;

  constructor(seed: number | string | RngState) {
    if (typeof seed === 'object') {
      this.prng = seedrandom.alea('', { state: { ...seed.alea } });
      this.spareNormal = seed.spareNormal;
    } else {
      this.prng = seedrandom.alea(String(seed), { state: true });
      this.spareNormal = null;
    }
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.prng();
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.prng();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.prng() * n);
  }

  bernoulli(p: number): boolean {
    return this.prng() < p;
  }

  normal(): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return z;
    }
    const u = 1 - this.prng(); // (0, 1]: log(u) is finite
    const v = this.prng();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }

  /** An independent generator derived from this one (advances this one by one draw). */
  fork(): Rng {
    return new Rng(Math.floor(this.prng() * 2 ** 32));
  }

  state(): RngState {
    return { alea: this.prng.state() as RngState['alea'], spareNormal: this.spareNormal };
  }
}
