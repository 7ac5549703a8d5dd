import { describe, expect, it } from 'vitest';
import { renderSlots } from '../../server/render/render.js';

describe('render slots', () => {
  it('runs one render per slot, queues the next, and refuses past the queue with 503', async () => {
    const run = renderSlots(1, 1);
    const order: string[] = [];
    let release!: () => void;
    const a = run(() => new Promise<void>((r) => (release = r)).then(() => order.push('a')));
    const b = run(async () => order.push('b'));
    await expect(run(async () => order.push('c'))).rejects.toMatchObject({ status: 503, code: 'RenderingBusy' });
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    release();
    await Promise.all([a, b]);
    expect(order).toEqual(['a', 'b']);
    // Free again: a new render starts at once.
    await run(async () => order.push('d'));
    expect(order).toEqual(['a', 'b', 'd']);
  });

  it('frees its slot when a render fails', async () => {
    const run = renderSlots(1, 0);
    await expect(run(async () => Promise.reject(new Error('bad frame')))).rejects.toThrow('bad frame');
    await expect(run(async () => 'ok')).resolves.toBe('ok');
  });
});
