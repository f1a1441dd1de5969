/**
 * A file that is still being written, read by someone who must not get ahead of the writer:
 * lets a layer's upload start while the layer is being built.
 */
export interface GrowthState {
  /** Bytes safely in the file. */
  available: number;
  /** True once the writer has finished: `available` is the final size. */
  complete: boolean;
}

export class GrowingFile {
  private written = 0;
  private finished = false;
  private failure: unknown;
  private waiters: Array<() => void> = [];

  constructor(readonly path: string) {}

  /** Called by the writer after bytes reached the file. */
  grew(total: number): void {
    this.written = total;
    this.wake();
  }

  finish(size: number): void {
    this.written = size;
    this.finished = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `offset` bytes are available or the file is complete; rejects if the writer failed. */
  async waitFor(offset: number): Promise<GrowthState> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.written >= offset || this.finished) return { available: this.written, complete: this.finished };
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}
