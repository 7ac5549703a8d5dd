import { newCaller, type Caller, type Principal } from '../access.js';
import { recordAudit, type AuditDeps } from '../audit.js';

// An import's audit trail: one `store` row per batch of files (as one STOW
// request of many instances gets one row), naming the import's principal,
// protocol cli and command import, the UIDs stored or found already stored,
// and the batch's counts. A row per file would double the writes of a
// migration; one row for a whole migration would name millions of UIDs.
// The files of a batch are handed to `onWritten` only once its row is
// written, so whatever the import records as done has been audited: after a
// kill, the files of a batch whose row was not written yet are looked at
// again (and found already present, and audited, then).

interface Batch<T> {
  caller: Caller;
  started: number;
  files: number;
  inFlight: number;
  stored: number;
  present: number;
  failed: number;
  retired: boolean;
  done: T[];
}

export type BatchOutcome = 'stored' | 'present' | 'failed';

export class AuditBatches<T> {
  private current: Batch<T> | undefined;
  private readonly writing = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly deps: AuditDeps,
    private readonly principal: Principal,
    private readonly command: string,
    private readonly detail: Record<string, unknown>,
    private readonly onWritten: (done: T[]) => void,
    private readonly maxFiles = 50,
    private readonly maxAgeMs = 2_000,
  ) {}

  /** The batch (and its Caller) a file about to be stored belongs to. */
  take(): Batch<T> {
    const now = Date.now();
    let b = this.current;
    if (!b || b.files >= this.maxFiles || now - b.started >= this.maxAgeMs) {
      if (b) this.retire(b);
      b = {
        caller: newCaller(this.principal, { protocol: 'cli', command: this.command }),
        started: now,
        files: 0,
        inFlight: 0,
        stored: 0,
        present: 0,
        failed: 0,
        retired: false,
        done: [],
      };
      this.current = b;
    }
    b.files++;
    b.inFlight++;
    return b;
  }

  /** A file of `batch` is done; the batch's row is written once it is retired and has nothing in flight. Rejects when the row cannot be written. */
  async release(batch: Batch<T>, outcome: BatchOutcome, done?: T): Promise<void> {
    batch[outcome]++;
    if (done !== undefined) batch.done.push(done);
    batch.inFlight--;
    if (batch.retired && batch.inFlight === 0) await this.write(batch);
  }

  /** Writes every row still open (at the end of the import, or when it stops). */
  async flush(): Promise<void> {
    if (this.current) this.retire(this.current);
    this.current = undefined;
    await Promise.allSettled(this.writing);
    if (this.failure !== undefined) throw this.failure;
  }

  private retire(b: Batch<T>): void {
    b.retired = true;
    if (b.inFlight === 0) {
      const w = this.write(b);
      // A failure is seen by flush() or the next release; never unhandled.
      w.catch(() => undefined);
    }
  }

  private write(b: Batch<T>): Promise<void> {
    const w = (async () => {
      const ok = b.stored + b.present;
      // The outcomes a STOW request of the same instances would be audited with.
      const outcome = b.failed === 0 ? 'success' : ok > 0 ? 'partial' : 'invalid';
      await recordAudit(this.deps, b.caller, 'store', outcome, { ...this.detail, stored: b.stored, alreadyPresent: b.present, failed: b.failed });
      this.onWritten(b.done);
    })();
    this.writing.add(w);
    w.catch((err) => {
      this.failure ??= err;
    }).finally(() => this.writing.delete(w));
    return w;
  }
}
