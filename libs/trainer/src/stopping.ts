// When a run should stop on its own: no improvement of its evaluation for `patience` evaluations
// (early stopping, which also names the best evaluation), or feature_std under a threshold for a
// number of consecutive steps (collapse: every image maps to nearly the same feature).

export interface EvaluationPoint {
  step: number;
  value: number;
}

/** The best evaluation so far and how many have come since; continues a resumed run from its earlier evaluations. */
export class BestEvaluation {
  best: EvaluationPoint | null = null;
  sinceBest = 0;

  constructor(
    private readonly minDelta: number,
    history: readonly EvaluationPoint[] = [],
  ) {
    for (const point of history) this.observe(point);
  }

  /** True when this evaluation is the new best (the first always is). */
  observe(point: EvaluationPoint): boolean {
    if (this.best === null || point.value > this.best.value + this.minDelta) {
      this.best = point;
      this.sinceBest = 0;
      return true;
    }
    this.sinceBest++;
    return false;
  }

  /** Out of patience: `patience` evaluations in a row brought no improvement. */
  exhausted(patience: number): boolean {
    return this.sinceBest >= patience;
  }
}

/** Counts consecutive steps with feature_std under the threshold (a NaN counts: a diverged run has no features). */
export class CollapseWatch {
  private run = 0;

  constructor(
    readonly threshold: number,
    readonly steps: number,
  ) {}

  /** True once the last `steps` steps were all under the threshold. */
  observe(featureStd: number): boolean {
    this.run = featureStd >= this.threshold ? 0 : this.run + 1;
    return this.run >= this.steps;
  }
}
