/** A dataset held as one compact uint8 copy, so even a large one is never held twice. */
export interface ImageDataset {
  count: number;
  height: number;
  width: number;
  channels: 1 | 3;
  /** count*height*width*channels bytes: each image HWC, images back to back. */
  pixels: Uint8Array;
  /** Present when the source has labels. */
  labels?: Int32Array;
  /** Label index -> name, when known. */
  classNames?: string[];
}

export interface ImageSize {
  height: number;
  width: number;
}
