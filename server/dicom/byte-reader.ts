/** Raised when a stream ends before the structure being read is complete. */
export class TruncatedError extends Error {
  constructor(what: string) {
    super(`data ends inside ${what}`);
    this.name = 'TruncatedError';
  }
}

/**
 * Pull reader over a stream of chunks that tracks the absolute offset, so the
 * DICOM scanner can copy small values and skip large ones without ever
 * holding more than the bytes it asked for.
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private avail = 0;
  private done = false;
  /** Absolute offset of the next unread byte. */
  pos = 0;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.avail < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length) {
        this.chunks.push(r.value);
        this.avail += r.value.length;
      }
    }
    return this.avail >= n;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** Up to n bytes without consuming them (fewer only at the end of data). */
  async peek(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.gather(Math.min(n, this.avail), false);
  }

  async read(n: number, what = 'a data element'): Promise<Buffer> {
    if (!(await this.fill(n))) throw new TruncatedError(what);
    return this.gather(n, true);
  }

  async discard(n: number, what = 'a data element'): Promise<void> {
    while (n > 0) {
      if (this.avail === 0 && !(await this.fill(1))) throw new TruncatedError(what);
      const c = this.chunks[0];
      if (c.length <= n) {
        this.chunks.shift();
        this.avail -= c.length;
        this.pos += c.length;
        n -= c.length;
      } else {
        this.chunks[0] = c.subarray(n);
        this.avail -= n;
        this.pos += n;
        n = 0;
      }
    }
  }

  /**
   * The unread bytes, from the next one to the end of the stream, handed
   * over to another reader (an inflating one): this reader is spent.
   */
  async *rest(): AsyncGenerator<Buffer> {
    const held = this.chunks;
    this.chunks = [];
    this.avail = 0;
    yield* held;
    for (;;) {
      const r = await this.it.next();
      if (r.done) break;
      yield r.value;
    }
    this.done = true;
  }

  /** Consumes the rest of the stream. */
  async drain(): Promise<void> {
    this.chunks = [];
    this.avail = 0;
    for (;;) {
      const r = await this.it.next();
      if (r.done) break;
    }
    this.done = true;
  }

  private gather(n: number, consume: boolean): Buffer {
    let out: Buffer;
    if (this.chunks.length && this.chunks[0].length >= n) out = this.chunks[0].subarray(0, n);
    else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      for (const c of this.chunks) {
        if (off >= n) break;
        const take = Math.min(c.length, n - off);
        c.copy(out, off, 0, take);
        off += take;
      }
    }
    if (consume) {
      let left = n;
      while (left > 0) {
        const c = this.chunks[0];
        if (c.length <= left) {
          this.chunks.shift();
          left -= c.length;
        } else {
          this.chunks[0] = c.subarray(left);
          left = 0;
        }
      }
      this.avail -= n;
      this.pos += n;
    }
    return out;
  }
}
