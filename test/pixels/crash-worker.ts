import run, { type PixelTask } from '../../server/pixels/worker.js';

// The real pool worker, except that a frame starting with "CRASH" ends the
// worker thread the way a codec fault would.
export default function crashing(task: PixelTask) {
  if ((task.op === 'decode' || task.op === 'render') && Buffer.from(task.frame.subarray(0, 5)).toString('latin1') === 'CRASH') process.exit(7);
  return run(task);
}
