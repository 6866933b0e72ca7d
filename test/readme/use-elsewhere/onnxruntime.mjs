import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

// The checkpoint's `transform` (in its REST resource, and in the ONNX file's metadata_props).
const size = 28, mean = [0.286], std = [0.353];

const session = await ort.InferenceSession.create('encoder.onnx');
const { data, info } = await sharp('shoe.png').resize(size, size).greyscale().raw().toBuffer({ resolveWithObject: true });
const c = info.channels;
// HWC bytes -> normalised NCHW floats, as the service's evaluation transform does.
const input = new Float32Array(c * size * size);
for (let i = 0; i < size * size; i++) {
  for (let ch = 0; ch < c; ch++) input[ch * size * size + i] = (data[i * c + ch] / 255 - mean[ch]) / std[ch];
}
const { backbone } = await session.run({ input: new ort.Tensor('float32', input, [1, c, size, size]) });
console.log(JSON.stringify(Array.from(backbone.data))); // the embedder's output=backbone vector
