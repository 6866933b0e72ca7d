import type { EncoderConfig } from './config.js';

/** One residual block of the plan; `name` is torchvision's (`layer2.0`). */
export interface BlockPlan {
  name: string;
  kind: 'basic' | 'bottleneck';
  inChannels: number;
  planes: number;
  outChannels: number;
  stride: number;
  downsample: boolean;
}

export interface ResnetPlan {
  stem: { kernel: number; stride: number; pad: number; maxPool: boolean; outChannels: number };
  blocks: BlockPlan[];
  featureDim: number;
}

const depths = { resnet18: [2, 2, 2, 2], resnet34: [3, 4, 6, 3], resnet50: [3, 4, 6, 3] } as const;

/** The layer structure of a ResNet, shared by parameter declaration and the forward pass. */
export function resnetPlan(c: EncoderConfig): ResnetPlan {
  const kind = c.arch === 'resnet50' ? 'bottleneck' : 'basic';
  const expansion = kind === 'bottleneck' ? 4 : 1;
  const stem =
    c.stem === 'cifar'
      ? { kernel: 3, stride: 1, pad: 1, maxPool: false, outChannels: c.width }
      : { kernel: 7, stride: 2, pad: 3, maxPool: true, outChannels: c.width };
  const blocks: BlockPlan[] = [];
  let inChannels = c.width;
  depths[c.arch].forEach((count, stage) => {
    const planes = c.width * 2 ** stage;
    for (let j = 0; j < count; j++) {
      const stride = stage > 0 && j === 0 ? 2 : 1;
      const outChannels = planes * expansion;
      blocks.push({
        name: `layer${stage + 1}.${j}`,
        kind,
        inChannels,
        planes,
        outChannels,
        stride,
        downsample: stride !== 1 || inChannels !== outChannels,
      });
      inChannels = outChannels;
    }
  });
  return { stem, blocks, featureDim: inChannels };
}

/**
 * One step of the backbone's forward pass; step i makes value i + 1 from value `src` (value 0: the
 * images). A convolution is followed by its BatchNorm (`bn`), then the residual (a value) is added and
 * ReLU applied where given; `maxPool` is the ImageNet stem's 3x3, stride 2, pad 1.
 */
export type BackboneStep =
  | { kind: 'conv'; conv: string; bn: string; src: number; stride: number; pad: number; relu: boolean; residual?: number }
  | { kind: 'maxPool'; src: number };

/** The backbone as a list of steps, in the order the forward pass runs them (the last value is pooled). */
export function backboneSteps(plan: ResnetPlan): BackboneStep[] {
  const steps: BackboneStep[] = [];
  const conv = (name: string, bn: string, src: number, stride: number, pad: number, relu: boolean, residual?: number): number =>
    steps.push({ kind: 'conv', conv: name, bn, src, stride, pad, relu, ...(residual === undefined ? {} : { residual }) });
  let h = conv('conv1', 'bn1', 0, plan.stem.stride, plan.stem.pad, true);
  if (plan.stem.maxPool) h = steps.push({ kind: 'maxPool', src: h });
  for (const b of plan.blocks) {
    const shortcut = b.downsample ? conv(`${b.name}.downsample.0`, `${b.name}.downsample.1`, h, b.stride, 0, false) : h;
    if (b.kind === 'basic') {
      const y = conv(`${b.name}.conv1`, `${b.name}.bn1`, h, b.stride, 1, true);
      h = conv(`${b.name}.conv2`, `${b.name}.bn2`, y, 1, 1, true, shortcut);
    } else {
      const y1 = conv(`${b.name}.conv1`, `${b.name}.bn1`, h, 1, 0, true);
      const y2 = conv(`${b.name}.conv2`, `${b.name}.bn2`, y1, b.stride, 1, true);
      h = conv(`${b.name}.conv3`, `${b.name}.bn3`, y2, 1, 0, true, shortcut);
    }
  }
  return steps;
}
