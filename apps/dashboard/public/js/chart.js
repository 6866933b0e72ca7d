// A metric chart (uPlot) that grows as points arrive. The figure's data-points attribute says how
// many points it holds, for people and tests alike.
import uPlot from '../vendor/uPlot.esm.js';
import { h } from './dom.js';
import { number, percent } from './format.js';

const HEIGHT = 190;
// Steps are whole numbers: no tick at step 2.5.
const STEP_INCREMENTS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10_000, 100_000].map((p) => m * p)).sort((a, b) => a - b);

/** Inserts or overwrites [step, value] points keeping xs sorted (a replayed step overwrites, like the metrics table). */
function merge(xs, ys, points) {
  for (const [step, value] of points) {
    let i = xs.length;
    while (i > 0 && xs[i - 1] > step) i--;
    if (i > 0 && xs[i - 1] === step) ys[i - 1] = value;
    else {
      xs.splice(i, 0, step);
      ys.splice(i, 0, value);
    }
  }
}

/** Decimals that tell ticks `increment` apart (uPlot's default shows at most three: 0.0600, 0.0599 would both read 0.06). */
function decimalsFor(increment) {
  const exponent = Math.floor(Math.log10(increment));
  const mantissa = increment / 10 ** exponent;
  return Math.max(0, -exponent + (Math.abs(mantissa - Math.round(mantissa)) > 1e-6 ? 1 : 0));
}

/**
 * `name`: the metric; `percent`: a fraction shown as a percentage (kNN accuracy); `xMax()`: the
 * job's progress, so that every chart spans the same steps. uPlot draws dots by itself where points
 * are sparse (kNN accuracy comes once per epoch).
 */
export function metricChart({ name, title, color, percent: asPercent = false, xMax }) {
  const xs = [];
  const ys = [];
  const format = asPercent ? percent : (v) => number(v, 4);
  const plotEl = h('div', { class: 'plot' });
  const emptyEl = h('p', { class: 'chart-empty muted' }, 'No points yet');
  const figure = h('figure', { class: 'chart', dataset: { chart: name, points: '0' } }, h('figcaption', {}, title), emptyEl, plotEl);
  const font = '11px system-ui';
  const plot = new uPlot(
    {
      width: 400,
      height: HEIGHT,
      scales: {
        // From the data, not uPlot's min and max: it pads a single point's range (kNN after one epoch) far beyond
        // it. A step of margin keeps the newest dot whole.
        x: { time: false, range: () => [0, Math.max(1, xs.at(-1) ?? 0, xMax()) + 1] },
        ...(asPercent && { y: { range: [0, 1] } }),
      },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { label: 'step', size: 36, labelSize: 16, font, labelFont: font, incrs: STEP_INCREMENTS },
        {
          size: 62,
          font,
          values: (_u, ticks, _axis, _space, increment) =>
            ticks.map((v) => (asPercent ? `${(v * 100).toFixed(decimalsFor(increment * 100))}%` : v.toFixed(decimalsFor(increment)))),
        },
      ],
      series: [{ label: 'step' }, { label: title, stroke: color, fill: `${color}14`, width: 1.5, value: (_u, v) => (v === null || v === undefined ? '—' : format(v)) }],
    },
    [xs, ys],
    plotEl,
  );
  let pending = false;
  const redraw = () => {
    pending = false;
    plot.setData([xs, ys]);
  };
  new ResizeObserver(() => plot.setSize({ width: Math.max(200, plotEl.clientWidth), height: HEIGHT })).observe(plotEl);

  return {
    element: figure,
    get lastStep() {
      return xs.at(-1) ?? 0;
    },
    /**
     * Adds points ([step, value] pairs), none to follow the job's progress; the drawing waits for
     * the next frame, so a burst redraws once.
     */
    add(newPoints) {
      merge(xs, ys, newPoints);
      figure.dataset.points = String(xs.length);
      emptyEl.hidden = xs.length > 0;
      if (!pending) {
        pending = true;
        requestAnimationFrame(redraw);
      }
    },
  };
}
