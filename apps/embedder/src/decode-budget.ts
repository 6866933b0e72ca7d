import { status } from '@grpc/grpc-js';
import { Semaphore } from 'async-mutex';
import { EmbedError } from './errors.js';

// The semaphore counts in units of this many pixels (a 256x256 image): async-mutex walks its value on each release.
const PIXELS_PER_UNIT = 65_536;

/**
 * Bounds the memory that decoding encoded images takes: a request may decode at most `perRequest`
 * pixels (counted from the images' headers, before decoding), and all requests together at most
 * `inFlight`; a request beyond what is free waits for earlier ones to finish decoding.
 */
export class DecodeBudget {
  private readonly semaphore: Semaphore;
  private readonly capacity: number;

  constructor(private readonly limits: { perRequest: number; inFlight: number }) {
    this.capacity = Math.max(1, Math.floor(limits.inFlight / PIXELS_PER_UNIT));
    this.semaphore = new Semaphore(this.capacity);
  }

  /** Holds `pixels` of the budget until the returned release is called. @throws EmbedError RESOURCE_EXHAUSTED past the per-request budget. */
  async reserve(pixels: number): Promise<() => void> {
    if (pixels > this.limits.perRequest) {
      throw new EmbedError(
        status.RESOURCE_EXHAUSTED,
        `the images decode to ${pixels} pixels in all; the limit per request is ${this.limits.perRequest} (send fewer or smaller images)`,
      );
    }
    // A request larger than the whole in-flight budget runs alone rather than never.
    const units = Math.min(this.capacity, Math.max(1, Math.ceil(pixels / PIXELS_PER_UNIT)));
    const [, release] = await this.semaphore.acquire(units);
    return release;
  }
}
