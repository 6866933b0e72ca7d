// What the speed benchmarks share: options, the step timer, and running each side (TypeScript, PyTorch)
// in a process of its own, so that each side's peak RSS is its own.
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cifarDemoDefaults, initBackend, tf, wasmHeapBytes, type BackendName, type MocoConfig } from '@moco/moco';
import { findTorchPython } from '../libs/moco/src/testing/torch-reference.js';

/** CIFAR-sized inputs, 3 channels (cifarDemoDefaults.inChannels). */
const IMAGE_SIZE = 32;

/**
 * Steps one side runs: `warmup` untimed, then timed ones until `maxSteps`, stopping earlier once
 * `minSteps` are done and the timed steps have taken `budgetS` seconds.
 */
export interface Schedule {
  warmup: number;
  minSteps: number;
  maxSteps: number;
  budgetS: number;
}

export interface Timing {
  images_per_s: number;
  step_ms_median: number;
  steps_timed: number;
  warmup: number;
  step_ms: number[];
}

/** One measurement, as handed to a child process (the TS entry script or a Python script) as JSON. */
export interface Job {
  config: MocoConfig;
  batch: number;
  size: number;
  schedule: Schedule;
  backend: BackendName | 'auto';
  threads: number;
}

export interface BenchSpec {
  name: string;
  /** What the bench times, for --help; the options text is shared. */
  description: string;
  /** `import.meta.url` of the entry script: it is re-run with `--child` for the TypeScript side. */
  entry: string;
  /** The PyTorch side, a script in bench/. */
  torchScript: string;
  defaultBatches: number[];
  /** Timed steps when `--steps` is not given, normally and with `--quick`. */
  auto: Omit<Schedule, 'warmup'>;
  quick: Omit<Schedule, 'warmup'>;
  /** The TypeScript side: set up, then time `schedule` steps (see `timeSteps`). */
  measure: (job: Job) => Promise<Timing>;
}

export const round = (x: number, digits = 1) => Number(x.toFixed(digits));

export async function timeSteps(batch: number, schedule: Schedule, step: () => unknown): Promise<Timing> {
  for (let i = 0; i < schedule.warmup; i++) await step();
  const ms: number[] = [];
  let total = 0;
  while (ms.length < schedule.maxSteps && (ms.length < schedule.minSteps || total < schedule.budgetS * 1000)) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
    total += ms.at(-1)!;
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return {
    // The median step, not the mean: on a shared machine single steps can stall.
    images_per_s: round((batch * 1000) / median),
    step_ms_median: round(median),
    steps_timed: ms.length,
    warmup: schedule.warmup,
    step_ms: ms.map((x) => round(x)),
  };
}

/** Runs the entry script's parent (`npm run bench:...`) or, with `--child JOB`, its TypeScript side. */
export async function benchMain(spec: BenchSpec): Promise<void> {
  const argv = process.argv.slice(2);
  try {
    if (argv[0] === '--child') await child(spec, JSON.parse(argv[1]!) as Job);
    else await parent(spec, argv);
  } catch (error) {
    // Bad options and a missing Python are the usual causes: their message is the whole story.
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

async function child(spec: BenchSpec, job: Job): Promise<void> {
  const choice = await initBackend({ prefer: job.backend });
  let outcome: Timing | { error: string };
  try {
    outcome = await spec.measure(job);
  } catch (error) {
    // Reported, not thrown: a side that cannot run (e.g. the wasm heap's 4 GiB cap) is a result too.
    outcome = { error: error instanceof Error ? error.message : String(error) };
  }
  const result = {
    ...outcome,
    backend: choice.name,
    backend_detail: choice.detail,
    wasm_heap_mb: choice.name === 'wasm' ? round(wasmHeapBytes() / 2 ** 20) : undefined,
    tfjs: tf.version_core,
    peak_rss_mb: round(process.resourceUsage().maxRSS / 1024),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

const list = (s: string) => s.split(',').map((x) => Number.parseInt(x, 10));
const int = (s: string | undefined) => (s === undefined ? undefined : Number.parseInt(s, 10));

async function parent(spec: BenchSpec, argv: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      widths: { type: 'string' },
      batch: { type: 'string' },
      steps: { type: 'string' },
      warmup: { type: 'string', default: '1' },
      'budget-s': { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '1' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (o.help) {
    process.stdout.write(usageOf(spec));
    return;
  }
  const widths = list(o.widths ?? (o.quick ? '16' : '16,64'));
  const batches = o.batch ? list(o.batch) : spec.defaultBatches;
  const steps = int(o.steps);
  const auto = o.quick ? spec.quick : spec.auto;
  const budgetS = o['budget-s'] === undefined ? auto.budgetS : Number(o['budget-s']);
  // With --steps, minSteps = maxSteps, so the budget no longer matters.
  const schedule: Schedule = {
    warmup: int(o.warmup)!,
    minSteps: steps ?? auto.minSteps,
    maxSteps: steps ?? auto.maxSteps,
    budgetS,
  };
  const rounds = int(o.rounds)!;
  const numbers = [...widths, ...batches, schedule.warmup, schedule.minSteps, int(o.threads)!, rounds];
  if (numbers.some((x) => !Number.isInteger(x) || x < 0) || !(budgetS >= 0) || schedule.maxSteps < 1 || rounds < 1) {
    throw new Error('invalid options: widths, batches, steps, warmup, threads and rounds are whole numbers (rounds >= 1), budget-s >= 0 (see --help)');
  }
  const backend = o.backend as Job['backend'];
  const { python, reason } = findTorchPython();
  if (!python) throw new Error(reason);

  const started = performance.now();
  const loadStart = os.loadavg();
  const results = [];
  let torchVersion = '';
  let tfjsVersion = '';
  for (const width of widths) {
    for (const batch of batches) {
      const job: Job = {
        config: { ...cifarDemoDefaults, width, batchSize: batch },
        batch,
        size: IMAGE_SIZE,
        schedule,
        backend,
        threads: int(o.threads)!,
      };
      const arg = JSON.stringify(job);
      // Rounds alternate the sides (TypeScript, PyTorch, TypeScript, ...), so a slow spell of a shared
      // machine lands on both; the row is the round with the median ratio.
      const runs: Array<{ ts: Side; torch: Side; ratio: number | null }> = [];
      for (let r = 1; r <= rounds; r++) {
        const of = rounds > 1 ? ` (round ${r} of ${rounds})` : '';
        log(`${spec.name} width ${width} batch ${batch}: TypeScript (backend ${backend})${of}`);
        const { tfjs, ...ts } = await runJson('TypeScript side', process.execPath, [...process.execArgv, fileURLToPath(spec.entry), '--child', arg]);
        log(summary(ts));
        log(`${spec.name} width ${width} batch ${batch}: PyTorch (${job.threads} threads)${of}`);
        const { version, ...torch } = await runJson('PyTorch side', python, [fileURLToPath(new URL(spec.torchScript, import.meta.url)), arg]);
        log(summary(torch));
        torchVersion ||= (version as string | undefined) ?? '';
        tfjsVersion ||= (tfjs as string | undefined) ?? '';
        runs.push({ ts, torch, ratio: ts.images_per_s && torch.images_per_s ? round(ts.images_per_s / torch.images_per_s, 3) : null });
      }
      const ranked = runs.filter((x) => x.ratio !== null).sort((a, b) => a.ratio! - b.ratio!);
      const { ts, torch, ratio } = ranked[(ranked.length - 1) >> 1] ?? runs[0]!;
      results.push({ width, batch, ts, torch, ratio, ...(rounds > 1 ? { ratios_by_round: runs.map((x) => x.ratio) } : {}) });
    }
  }
  const c = cifarDemoDefaults;
  const report = {
    bench: spec.name,
    model: { arch: c.arch, stem: c.stem, head: c.head, in_channels: c.inChannels, image_size: IMAGE_SIZE },
    moco: { K: c.K, dim: c.dim, bn_splits: c.bnSplits, m: c.m, T: c.T, lr: c.lr, momentum: c.momentum, weight_decay: c.weightDecay },
    ratio_is: 'ts.images_per_s / torch.images_per_s (1 = as fast as PyTorch, 0.5 = half as fast)',
    results,
    machine: machineReport(loadStart, tfjsVersion, torchVersion),
    elapsed_s: round((performance.now() - started) / 1000),
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

/** The machine a report was measured on, with the load averages (1, 5, 15 minutes) at its start and end. */
export function machineReport(loadStart: number[], tfjs: string, torch: string) {
  return {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    tfjs,
    torch,
    load_avg_start: loadStart.map((x) => round(x, 2)),
    load_avg_end: os.loadavg().map((x) => round(x, 2)),
  };
}

export function log(line: string): void {
  process.stderr.write(line + '\n');
}

export type Side = Partial<Timing> & { error?: string } & Record<string, unknown>;

function summary(side: Side): string {
  return side.error
    ? `  failed: ${side.error}`
    : `  ${side.images_per_s} images/s, median step ${side.step_ms_median} ms over ${side.steps_timed} steps`;
}

/**
 * Runs a child whose last stdout line is a JSON object; its stderr (progress, backend choice) passes
 * through. A child that dies without one becomes `{ error }`, so the report still comes out.
 */
export function runJson(label: string, command: string, args: string[]): Promise<Side> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as Side);
      else resolve({ error: `${label} exited with ${signal ?? `code ${code}`} (its stderr is above)` });
    });
  });
}

function usageOf(spec: BenchSpec): string {
  const [one, unit] = spec.name === 'infer' ? ['batch', 'batches'] : ['step', 'steps'];
  const { minSteps, maxSteps, budgetS } = spec.auto;
  return `Usage: npm run bench:${spec.name === 'infer' ? 'infer' : 'train'} -- [options]

${spec.description}

  --widths 16,64        ResNet widths (default 16,64; 16 with --quick)
  --batch ${spec.defaultBatches.join(',').padEnd(14)}batch sizes, comma-separated (default ${spec.defaultBatches.join(',')})
  --steps N             exactly N timed ${unit} per side (default: ${minSteps} to ${maxSteps}, within --budget-s)
  --warmup N            untimed ${unit} first (default 1)
  --budget-s S          seconds of timed ${unit} per side once the minimum is done (default ${budgetS})
  --backend auto|native|wasm|cpu|tensorflow   tfjs backend (default auto; native: oneDNN addon, opt-in)
  --threads N           PyTorch threads (default 2)
  --rounds N            time both sides N times, alternating, and report the round with the median ratio (default 1)
  --quick               width 16, 1 timed ${one}
`;
}
