/**
 * The loop of a background runner (export jobs, live collections). It runs
 * `turn` until stopped. After a turn that found nothing to do ('idle') it
 * waits `pollMs`, or less when `wake()` announces new work; a wake that
 * comes while a turn runs is remembered, so the next wait ends at once and
 * work announced mid-turn is not left until the next poll. `stop()` ends the
 * wait, lets the turn in hand finish (a turn checks `stopping()` between its
 * steps), runs `last` (giving leases up) and resolves. The timer never keeps
 * the process alive. A turn handles its own errors; one that escapes is
 * logged through `onError` and the loop goes on after a wait.
 */
export interface PollLoop {
  /** Ends the current wait at once, or the next one if a turn is running. */
  wake(): void;
  stop(): Promise<void>;
}

export interface PollLoopOptions {
  pollMs: number;
  turn: (stopping: () => boolean) => Promise<'busy' | 'idle'>;
  onError: (err: unknown) => void;
  last?: () => Promise<void>;
}

export function pollLoop(o: PollLoopOptions): PollLoop {
  let stopping = false;
  let woken = false;
  let endWait: (() => void) | undefined;
  const stopped = () => stopping;
  const wait = () =>
    new Promise<void>((resolve) => {
      if (woken || stopping) {
        woken = false;
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        endWait = undefined;
        resolve();
      };
      const timer = setTimeout(done, o.pollMs);
      timer.unref();
      endWait = done;
    });
  const wake = () => {
    if (endWait) endWait();
    else woken = true;
  };
  const loop = (async () => {
    while (!stopping) {
      let next: 'busy' | 'idle' = 'idle';
      try {
        next = await o.turn(stopped);
      } catch (err) {
        o.onError(err);
      }
      if (next === 'idle' && !stopping) await wait();
    }
    await o.last?.();
  })();
  return {
    wake,
    async stop() {
      stopping = true;
      wake();
      await loop;
    },
  };
}
