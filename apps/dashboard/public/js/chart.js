// A metric chart (uPlot) that grows as points arrive: one or several series on a shared x axis
// (steps of a job, or epochs when runs are compared), dashed horizontal reference lines (baselines,
// the healthy feature spread) and dotted epoch markers. The figure's data-points attribute says how
// many points its first series holds (data-series: each series'), data-references and
// data-epoch-marks what else it draws.
import uPlot from '../vendor/uPlot.esm.js';
import { h } from './dom.js';
import { number, percent } from './format.js';

const HEIGHT = 190;
const FONT = '11px system-ui';
// Steps are whole numbers: no tick at step 2.5.
const STEP_INCREMENTS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10_000, 100_000].map((p) => m * p)).sort((a, b) => a - b);
/** Series colours, told apart in print and by most colour-blind readers (Okabe-Ito, then two more). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#999933'];

/**
 * Inserts or overwrites points ([x, value] pairs) of series `s`, keeping xs sorted and every series
 * aligned to them (null where a series has no point). A replayed step overwrites, like the metrics table.
 */
function merge(xs, columns, s, points) {
  for (const [x, value] of points) {
    let i = xs.length;
    while (i > 0 && xs[i - 1] > x) i--;
    if (i > 0 && xs[i - 1] === x) {
      columns[s][i - 1] = value;
      continue;
    }
    xs.splice(i, 0, x);
    for (const [c, column] of columns.entries()) column.splice(i, 0, c === s ? value : null);
  }
}

/** Decimals that tell ticks `increment` apart (uPlot's default shows at most three: 0.0600, 0.0599 would both read 0.06). */
function decimalsFor(increment) {
  const exponent = Math.floor(Math.log10(increment));
  const mantissa = increment / 10 ** exponent;
  return Math.max(0, -exponent + (Math.abs(mantissa - Math.round(mantissa)) > 1e-6 ? 1 : 0));
}

/** Draws the epoch markers (vertical, dotted) and reference lines (horizontal, dashed, labelled) under the series. */
function drawGuides(u, { epochMarks, references }) {
  const { ctx, bbox } = u;
  const ratio = devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${10 * ratio}px system-ui`;
  ctx.lineWidth = ratio;
  const [xMin, xMax] = [u.scales.x.min, u.scales.x.max];
  const marks = epochMarks().filter((m) => m.x > xMin && m.x < xMax);
  // A label every few epochs when they crowd: at least 28 px apart.
  const every = Math.max(1, Math.ceil((28 * ratio) / (bbox.width / Math.max(1, marks.length + 1))));
  ctx.setLineDash([2 * ratio, 3 * ratio]);
  ctx.strokeStyle = '#c7cbd1';
  ctx.fillStyle = '#9ca3af';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const [i, mark] of marks.entries()) {
    const x = Math.round(u.valToPos(mark.x, 'x', true));
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    if ((i + 1) % every === 0) ctx.fillText(mark.label, x, bbox.top + 2 * ratio);
  }
  ctx.setLineDash([6 * ratio, 4 * ratio]);
  ctx.textAlign = 'left';
  ctx.textBaseline = 'bottom';
  for (const ref of references()) {
    const y = Math.round(u.valToPos(ref.value, 'y', true));
    if (y < bbox.top || y > bbox.top + bbox.height) continue;
    ctx.strokeStyle = ref.color;
    ctx.fillStyle = ref.color;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    ctx.fillText(ref.label, bbox.left + 4 * ratio, y - 2 * ratio);
  }
  ctx.restore();
}

/**
 * `name`: the chart (its first series' metric); `series`: [{key, label, color}] (default one series,
 * `name`); `unit`: the y axis' label; `percent`: fractions shown as percentages on a 0-100% axis;
 * `xLabel`: 'step' (whole ticks) or another unit; `xMax()`: where the x axis ends at least (the job's
 * progress, so every chart spans the same steps); `epochMarks()`: [{x, label}]; `references()`:
 * [{label, value, color}], kept inside the y range. uPlot draws dots by itself where points are sparse.
 */
export function metricChart({
  name,
  title,
  color = PALETTE[0],
  series = [{ key: name, label: title, color }],
  unit,
  percent: asPercent = false,
  xLabel = 'step',
  xMax = () => 0,
  epochMarks = () => [],
  references = () => [],
}) {
  const xs = [];
  const columns = series.map(() => []);
  const format = asPercent ? percent : (v) => number(v, 4);
  const plotEl = h('div', { class: 'plot' });
  const emptyEl = h('p', { class: 'chart-empty muted' }, 'No points yet');
  const figure = h('figure', { class: 'chart', dataset: { chart: name, points: '0' } }, h('figcaption', {}, title), emptyEl, plotEl);
  const wholeSteps = xLabel === 'step';
  const yRange = (_u, min, max) => {
    const values = [min, max, ...references().map((r) => r.value)].filter((v) => v !== null && Number.isFinite(v));
    if (values.length === 0) return [0, 1];
    return uPlot.rangeNum(Math.min(...values), Math.max(...values), 0.1, true);
  };
  const plot = new uPlot(
    {
      width: 400,
      height: HEIGHT,
      scales: {
        // From the data, not uPlot's min and max: it pads a single point's range (kNN after one epoch) far beyond
        // it. A step of margin keeps the newest dot whole.
        x: { time: false, range: () => [0, Math.max(1, xs.at(-1) ?? 0, xMax()) + (wholeSteps ? 1 : 0)] },
        y: { range: asPercent ? [0, 1] : yRange },
      },
      cursor: { drag: { x: false, y: false } },
      legend: { show: series.length > 1 },
      axes: [
        { label: xLabel, size: 34, labelSize: 14, font: FONT, labelFont: FONT, ...(wholeSteps && { incrs: STEP_INCREMENTS }) },
        {
          label: unit ?? (asPercent ? 'accuracy (%)' : undefined),
          labelSize: 14,
          labelFont: FONT,
          size: 56,
          font: FONT,
          values: (_u, ticks, _axis, _space, increment) =>
            ticks.map((v) => (asPercent ? `${(v * 100).toFixed(decimalsFor(increment * 100))}` : v.toFixed(decimalsFor(increment)))),
        },
      ],
      series: [
        { label: xLabel },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          fill: series.length === 1 ? `${s.color}14` : undefined,
          width: 1.5,
          spanGaps: true,
          value: (_u, v) => (v === null || v === undefined ? '—' : format(v)),
        })),
      ],
      hooks: { drawClear: [(u) => drawGuides(u, { epochMarks, references })] },
    },
    [xs, ...columns],
    plotEl,
  );
  let pending = false;
  const redraw = () => {
    pending = false;
    plot.setData([xs, ...columns]);
    // What the canvas shows besides the series, for people with screen readers and for tests.
    figure.dataset.references = references().map((r) => r.label).join('; ');
    figure.dataset.epochMarks = String(epochMarks().length);
  };
  new ResizeObserver(() => plot.setSize({ width: Math.max(200, plotEl.clientWidth), height: HEIGHT })).observe(plotEl);

  const count = (s) => columns[s].reduce((n, v) => n + (v === null ? 0 : 1), 0);
  return {
    element: figure,
    get lastStep() {
      return xs.at(-1) ?? 0;
    },
    /**
     * Adds points ([x, value] pairs) to the series `key` (default: the first), none to follow the
     * job's progress; the drawing waits for the next frame, so a burst redraws once.
     */
    add(newPoints, key = series[0].key) {
      const s = series.findIndex((x) => x.key === key);
      if (s < 0) throw new Error(`chart ${name} has no series ${key}`);
      merge(xs, columns, s, newPoints);
      figure.dataset.points = String(count(0));
      figure.dataset.series = series.map((x, i) => `${x.key}=${count(i)}`).join(' ');
      emptyEl.hidden = xs.length > 0;
      if (!pending) {
        pending = true;
        requestAnimationFrame(redraw);
      }
    },
  };
}
