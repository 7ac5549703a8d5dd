import run, { type PixelTask } from '../../server/pixels/worker.js';

// The real pool worker, except that a frame (or a whole instance, in its
// preamble) starting with "CRASH" ends the worker thread the way a codec
// fault would.
export default function crashing(task: PixelTask) {
  const head = task.op === 'decode' || task.op === 'render' ? task.frame : task.op === 'transcode' ? task.file : undefined;
  if (head && Buffer.from(head.subarray(0, 5)).toString('latin1') === 'CRASH') process.exit(7);
  return run(task);
}
