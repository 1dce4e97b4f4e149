/** The isolate's budget of body bytes being read (read-body.ts): large bodies queue, small ones pass, waits end at the deadline. */
import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../../functions/middleware/read-body.ts';

const never = () => new AbortController().signal;

describe('ByteBudget', () => {
  it('holds what does not fit until earlier bodies are released, in arrival order', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60, never());
    const order: string[] = [];
    const second = budget.acquire(60, never()).then(() => order.push('second'));
    const third = budget.acquire(50, never()).then(() => order.push('third'));
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    budget.release(60);
    await second;
    expect(order).toEqual(['second']);
    budget.release(60);
    await third;
    expect(order).toEqual(['second', 'third']);
  });

  it('lets a small body through while a large one waits for room', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(80, never());
    let large = false;
    void budget.acquire(90, never()).then(() => (large = true));
    await budget.acquire(10, never()); // fits beside the 80 now: does not queue behind the 90
    expect(large).toBe(false);
  });

  it('gives up at the deadline and leaves the budget as it was', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(100, never());
    const deadline = new AbortController();
    const waiting = budget.acquire(50, deadline.signal);
    deadline.abort();
    await expect(waiting).rejects.toThrow(/timeout/);
    budget.release(100);
    await budget.acquire(100, never()); // all of it is free again: the abandoned wait took nothing
  });
});
