import { DatasetError } from './dataset-errors.js';
import { decodeImages } from './decode-image.js';
import { compareNames, type TreeFile } from './file-tree.js';
import type { ImageDataset } from './image-dataset.js';
import type { ResolvedOptions } from './read-options.js';

/** Suffixes of the formats the libvips inside sharp decodes (BMP, HEIC and the like are not among them). */
const IMAGE_EXTENSIONS = /\.(jpe?g|jpe|jfif|png|webp|gif|tiff?|avif)$/i;

export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.test(path);
}

interface Layout {
  images: TreeFile[];
  labels?: Int32Array;
  classNames?: string[];
}

/**
 * torchvision's ImageFolder layout: `<class>/<...>/<image>`, classes sorted by name, images by path within each
 * class. Images directly in the root, with no class folders, are a dataset without labels. Folders without images
 * are not classes.
 */
function layoutOf(files: TreeFile[], root: string): Layout {
  const images = files.filter((f) => isImagePath(f.path));
  const nested = images.filter((f) => f.path.includes('/'));
  if (nested.length === 0) return { images: images.sort((a, b) => compareNames(a.path, b.path)) };
  const loose = images.find((f) => !f.path.includes('/'));
  if (loose) {
    throw new DatasetError(
      'unsupported_format',
      loose.name,
      `image lies in the root of ${root} while others are in class folders; put every image in a class folder, or none`,
    );
  }
  const classOf = (f: TreeFile) => f.path.slice(0, f.path.indexOf('/'));
  const classNames = [...new Set(nested.map(classOf))].sort(compareNames);
  const index = new Map(classNames.map((name, i) => [name, i]));
  const keyed = nested.map((f) => ({ f, label: index.get(classOf(f))! }));
  keyed.sort((a, b) => a.label - b.label || compareNames(a.f.path, b.f.path));
  return { images: keyed.map((k) => k.f), labels: Int32Array.from(keyed, (k) => k.label), classNames };
}

/** Decodes the images of an ImageFolder tree into one dataset. */
export async function readImageFolder(files: TreeFile[], root: string, options: ResolvedOptions): Promise<ImageDataset> {
  const layout = layoutOf(files, root);
  const images = layout.images.slice(0, options.limit);
  if (images.length === 0) throw new DatasetError('empty_dataset', root, 'no images found (.jpg, .png, .webp, .gif, .tiff, .avif)');
  const channels = options.channels ?? 3;
  const { pixels, height, width } = await decodeImages(
    { count: images.length, name: (i) => images[i]!.name, load: (i) => images[i]!.read() },
    { size: options.size, channels, maxPixels: options.maxPixelsPerImage },
    options.maxBytes,
    root,
  );
  return {
    count: images.length,
    height,
    width,
    channels,
    pixels,
    ...(layout.labels && { labels: layout.labels.slice(0, images.length), classNames: layout.classNames }),
  };
}
