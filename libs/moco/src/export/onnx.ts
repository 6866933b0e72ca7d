import protobuf from 'protobufjs/minimal.js';
import { foldConvBn, littleEndianBytes, readEncoderWeights, type EncoderWeights, type Preprocessing, type TorchTensor } from './encoder-weights.js';
import { backboneSteps } from '../resnet-plan.js';

/** `backbone`: the pooled features only; `head`: the features and the projection head, two outputs. */
export type ExportOutput = 'backbone' | 'head';

/** Field numbers of onnx.proto (ONNX 1.12) for the few messages a frozen ResNet needs. */
const OPSET = 13;
const IR_VERSION = 8;
const FLOAT = 1;
const ATTR = { INT: 2, INTS: 7 } as const;

type Attr = { name: string; int: number } | { name: string; ints: number[] };
interface Node {
  op: string;
  inputs: string[];
  output: string;
  attrs?: Attr[];
}

/**
 * The query encoder of a training state (saveTrainingState bytes) as an ONNX model: BN folded into the
 * convolutions, input `input` [batch, channels, size, size] (NCHW, already preprocessed: see the
 * metadata), outputs named as the embedder's: `backbone` [batch, featureDim], and with `head` also
 * `head` [batch, dim]. Vectors are not L2-normalised (the embedder's `normalize` is the caller's choice).
 */
export function exportOnnx(stateBytes: Uint8Array, opts: { output: ExportOutput; preprocessing: Preprocessing }): Uint8Array {
  const w = readEncoderWeights(stateBytes);
  const graph = buildGraph(w, opts.output);
  const { size, channels, mean, std } = opts.preprocessing;
  const metadata: Record<string, string> = {
    size: String(size),
    channels: String(channels),
    mean: JSON.stringify(mean),
    std: JSON.stringify(std),
    // What the model expects of `input`: pixels / 255 after a bilinear resize to size x size, then (x - mean) / std.
    input_layout: 'NCHW',
    input_scale: String(1 / 255),
    arch: w.config.arch,
    stem: w.config.stem,
    width: String(w.config.width),
    head: w.config.head,
    step: String(w.progress.step),
    epoch: String(w.progress.epoch),
  };
  const writer = protobuf.Writer.create();
  writer.uint32(tag(1, 0)).int64(IR_VERSION);
  writer.uint32(tag(2, 2)).string('moco-service');
  writer.uint32(tag(7, 2)).fork();
  writeGraph(writer, graph, w, channels, size, opts.output);
  writer.ldelim();
  writer.uint32(tag(8, 2)).fork().uint32(tag(1, 2)).string('').uint32(tag(2, 0)).int64(OPSET).ldelim();
  for (const [key, value] of Object.entries(metadata)) {
    writer.uint32(tag(14, 2)).fork().uint32(tag(1, 2)).string(key).uint32(tag(2, 2)).string(value).ldelim();
  }
  return writer.finish();
}

interface Graph {
  nodes: Node[];
  initializers: Map<string, TorchTensor>;
}

function buildGraph(w: EncoderWeights, output: ExportOutput): Graph {
  const nodes: Node[] = [];
  const initializers = new Map<string, TorchTensor>();
  const node = (op: string, inputs: string[], out: string, attrs?: Attr[]) => {
    nodes.push({ op, inputs, output: out, attrs });
    return out;
  };
  // Value i + 1 of the steps is named after the step that makes it; value 0 is the input.
  const values = ['input'];
  for (const step of backboneSteps(w.plan)) {
    const x = values[step.src]!;
    if (step.kind === 'maxPool') {
      values.push(
        node('MaxPool', [x], 'maxpool', [
          { name: 'kernel_shape', ints: [3, 3] },
          { name: 'strides', ints: [2, 2] },
          { name: 'pads', ints: [1, 1, 1, 1] },
        ]),
      );
      continue;
    }
    const folded = foldConvBn(w, step.conv, step.bn);
    const k = folded.weight.shape[2]!;
    initializers.set(`${step.conv}.weight`, folded.weight);
    initializers.set(`${step.conv}.bias`, folded.bias);
    let y = node('Conv', [x, `${step.conv}.weight`, `${step.conv}.bias`], step.conv, [
      { name: 'kernel_shape', ints: [k, k] },
      { name: 'strides', ints: [step.stride, step.stride] },
      { name: 'pads', ints: [step.pad, step.pad, step.pad, step.pad] },
    ]);
    if (step.residual !== undefined) y = node('Add', [y, values[step.residual]!], `${step.conv}.add`);
    if (step.relu) y = node('Relu', [y], `${step.conv}.relu`);
    values.push(y);
  }
  const h = values.at(-1)!;
  const features = node('Flatten', [node('GlobalAveragePool', [h], 'avgpool')], 'backbone', [{ name: 'axis', int: 1 }]);
  if (output === 'head') {
    const linear = (name: string, x: string, out: string) => {
      initializers.set(`${name}.weight`, w.tensors.get(`${name}.weight`)!);
      initializers.set(`${name}.bias`, w.tensors.get(`${name}.bias`)!);
      return node('Gemm', [x, `${name}.weight`, `${name}.bias`], out, [{ name: 'transB', int: 1 }]);
    };
    if (w.config.head === 'v1') linear('fc', features, 'head');
    else linear('fc.2', node('Relu', [linear('fc.0', features, 'fc.0')], 'fc.1'), 'head');
  }
  return { nodes, initializers };
}

function writeGraph(writer: protobuf.Writer, graph: Graph, w: EncoderWeights, channels: number, size: number, output: ExportOutput): void {
  graph.nodes.forEach((n, i) => {
    writer.uint32(tag(1, 2)).fork();
    for (const input of n.inputs) writer.uint32(tag(1, 2)).string(input);
    writer.uint32(tag(2, 2)).string(n.output);
    writer.uint32(tag(3, 2)).string(`${n.op}_${i}`);
    writer.uint32(tag(4, 2)).string(n.op);
    for (const a of n.attrs ?? []) {
      writer.uint32(tag(5, 2)).fork().uint32(tag(1, 2)).string(a.name);
      if ('int' in a) writer.uint32(tag(3, 0)).int64(a.int).uint32(tag(20, 0)).int32(ATTR.INT);
      else {
        for (const v of a.ints) writer.uint32(tag(8, 0)).int64(v);
        writer.uint32(tag(20, 0)).int32(ATTR.INTS);
      }
      writer.ldelim();
    }
    writer.ldelim();
  });
  writer.uint32(tag(2, 2)).string(`moco_${w.config.arch}_${output}`);
  for (const [name, t] of graph.initializers) {
    writer.uint32(tag(5, 2)).fork();
    for (const d of t.shape) writer.uint32(tag(1, 0)).int64(d);
    writer.uint32(tag(2, 0)).int32(FLOAT).uint32(tag(8, 2)).string(name);
    writer.uint32(tag(9, 2)).bytes(littleEndianBytes(t.data));
    writer.ldelim();
  }
  writeValueInfo(writer, 11, 'input', ['batch', channels, size, size]);
  writeValueInfo(writer, 12, 'backbone', ['batch', w.plan.featureDim]);
  if (output === 'head') writeValueInfo(writer, 12, 'head', ['batch', w.config.dim]);
}

/** A float tensor's name and shape; a string dimension is symbolic (the dynamic batch). */
function writeValueInfo(writer: protobuf.Writer, field: number, name: string, dims: (number | string)[]): void {
  writer.uint32(tag(field, 2)).fork().uint32(tag(1, 2)).string(name);
  writer.uint32(tag(2, 2)).fork().uint32(tag(1, 2)).fork().uint32(tag(1, 0)).int32(FLOAT);
  writer.uint32(tag(2, 2)).fork();
  for (const d of dims) {
    writer.uint32(tag(1, 2)).fork();
    if (typeof d === 'string') writer.uint32(tag(2, 2)).string(d);
    else writer.uint32(tag(1, 0)).int64(d);
    writer.ldelim();
  }
  writer.ldelim().ldelim().ldelim().ldelim();
}

function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}
