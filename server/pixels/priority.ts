import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

// Pixel work (decoding, the display pipeline, JPEG/PNG encoding) yields the
// CPU to the event loop and to PostgreSQL: on a small machine a burst of
// rendered images must not make searches wait. Linux schedules threads, and
// its nice value is per thread (setpriority(2) with a thread id), so the pool
// workers and libvips' own worker threads are lowered while the event loop
// keeps its priority. Elsewhere (no /proc) this does nothing.

/** The nice value of pixel threads: at 10 a thread gets about a tenth of the CPU of a nice-0 thread it competes with. */
export const PIXEL_NICENESS = 10;

/** The Linux id of the calling thread (/proc/thread-self links to /proc/<pid>/task/<tid>); undefined off Linux. */
export function ownThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Lowers the calling thread (a pool worker) to PIXEL_NICENESS; false where that cannot be done. */
export function lowerOwnPriority(niceness = PIXEL_NICENESS): boolean {
  const tid = ownThreadId();
  if (tid === undefined) return false;
  try {
    setPriority(tid, niceness);
    return true;
  } catch {
    return false;
  }
}

/** The nice value and name of a thread of this process, from /proc/self/task/<tid>/stat (field 19 is nice). */
export function threadInfo(tid: number): { name: string; nice: number } | undefined {
  try {
    const s = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { name: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), nice: Number(fields[16]) };
  } catch {
    return undefined;
  }
}

const seen = new Set<number>();

/**
 * Lowers libvips' worker threads (sharp's encoding and resizing run there,
 * started by libuv's pool at normal priority) to PIXEL_NICENESS. Called after
 * each image is made; a thread is looked at once (libvips keeps its workers
 * for the life of the process), so the usual cost is one directory read.
 */
export function lowerLibvipsThreads(niceness = PIXEL_NICENESS): void {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const t of tids) {
    const tid = Number(t);
    if (seen.has(tid)) continue;
    const info = threadInfo(tid);
    if (!info) continue;
    seen.add(tid);
    if (!info.name.startsWith('libvips')) continue;
    if (info.nice < niceness) {
      try {
        setPriority(tid, niceness);
      } catch {
        // The thread ended meanwhile.
      }
    }
  }
}
