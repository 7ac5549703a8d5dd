import { describe, expect, it } from 'vitest';
import { pollLoop } from '../server/poll-loop.js';

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe('pollLoop', () => {
  it('waits pollMs after an idle turn, and runs busy turns back to back', async () => {
    let turns = 0;
    const loop = pollLoop({ pollMs: 60_000, turn: async () => (++turns < 3 ? 'busy' : 'idle'), onError: () => undefined });
    await tick(50);
    expect(turns).toBe(3);
    await loop.stop();
  });

  it('a wake ends the wait at once', async () => {
    let turns = 0;
    const loop = pollLoop({
      pollMs: 60_000,
      turn: async () => {
        turns++;
        return 'idle';
      },
      onError: () => undefined,
    });
    await tick();
    expect(turns).toBe(1);
    loop.wake();
    await tick();
    expect(turns).toBe(2);
    await loop.stop();
  });

  it('a wake during a turn is kept: the next wait ends at once', async () => {
    let turns = 0;
    let release!: () => void;
    const loop = pollLoop({
      pollMs: 60_000,
      turn: async () => {
        turns++;
        if (turns === 1) await new Promise<void>((r) => (release = r));
        return 'idle';
      },
      onError: () => undefined,
    });
    await tick();
    loop.wake();
    release();
    await tick();
    expect(turns).toBe(2);
    await loop.stop();
  });

  it('stop lets the turn in hand finish, then runs last once', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const loop = pollLoop({
      pollMs: 60_000,
      turn: async (stopping) => {
        await new Promise<void>((r) => (release = r));
        seen.push(`turn stopping=${stopping()}`);
        return 'busy';
      },
      onError: () => undefined,
      last: async () => {
        seen.push('last');
      },
    });
    await tick();
    const stopped = loop.stop();
    release();
    await stopped;
    expect(seen).toEqual(['turn stopping=true', 'last']);
  });

  it('an error that escapes a turn is reported and the loop goes on after a wait', async () => {
    const errors: unknown[] = [];
    let turns = 0;
    const loop = pollLoop({
      pollMs: 10,
      turn: async () => {
        if (++turns === 1) throw new Error('boom');
        return 'idle';
      },
      onError: (err) => errors.push(err),
    });
    await tick(60);
    expect(errors).toHaveLength(1);
    expect(turns).toBeGreaterThan(1);
    await loop.stop();
  });
});
