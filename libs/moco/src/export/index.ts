export { readEncoderWeights, type EncoderWeights, type Preprocessing, type TorchTensor } from './encoder-weights.js';
export { exportOnnx, type ExportOutput } from './onnx.js';
export { exportPytorch } from './pytorch.js';
