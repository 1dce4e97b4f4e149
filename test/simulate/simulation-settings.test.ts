/** `npm run simulate` refuses settings under which every round would be abandoned, and says what would work. */
import { describe, expect, it } from 'vitest';
import { checkSimulation } from '../../simulate/simulation.ts';

describe('simulation settings', () => {
  it('refuses 5 devices a round at 30 % dropout (3 survive, SecAgg+ needs 4) and names a size that works', () => {
    expect(() => checkSimulation({ devicesPerRound: 5, dropout: 0.3 })).toThrow(
      /leaves 3, and SecAgg\+ for that round needs 4 \(threshold 3 \+ 1\); use --per-round 6 or more/,
    );
    expect(() => checkSimulation({ devicesPerRound: 6, dropout: 0.3 })).not.toThrow();
  });

  it('accepts the defaults (20 a round, 30 %) and any size without dropout', () => {
    expect(() => checkSimulation({ devicesPerRound: 20, dropout: 0.3 })).not.toThrow();
    expect(() => checkSimulation({ devicesPerRound: 3, dropout: 0 })).not.toThrow();
  });
});
