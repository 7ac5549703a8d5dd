/**
 * The pause of a background runner's poll loop (export jobs, live
 * collections): `sleep(ms)` waits for the next poll, and `wake()` ends the
 * current wait at once, when new work is announced or the runner stops. The
 * timer never keeps the process alive.
 */
export function wakeableSleep(): { sleep: (ms: number) => Promise<void>; wake: () => void } {
  let wakeUp: (() => void) | undefined;
  return {
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        t.unref();
        wakeUp = () => {
          clearTimeout(t);
          resolve();
        };
      }),
    wake: () => wakeUp?.(),
  };
}
