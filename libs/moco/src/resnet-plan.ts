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
