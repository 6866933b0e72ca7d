// The umbrella package, not tfjs-core alone: in Node, tfjs-core's CommonJS build registers neither the
// gradient functions nor the chained tensor methods (x.add(y)); the umbrella's build does both.
export * from '@tensorflow/tfjs';
