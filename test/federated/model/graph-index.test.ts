/**
 * The head detector's graph index (federated/model/head/graph-index.ts): ranks inferred without recursion, so a
 * crafted chain of 20,000 nodes — which overflowed the call stack and answered POST /v1/tasks with a 500 — is read
 * like any other graph; a cycle (an invalid graph) leaves the rank unknown instead of looping.
 */
import { describe, expect, it } from 'vitest';
import { indexGraph } from '../../../federated/model/head/graph-index.ts';
import type { GraphProto } from '../../../federated/model/onnx-graph.ts';

const chain = (n: number): GraphProto => ({
  input: [{ name: 'x', type: { tensorType: { shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } } }],
  node: Array.from({ length: n }, (_, i) => ({ opType: 'Relu', input: [i ? `t${i - 1}` : 'x'], output: [`t${i}`] })),
});

describe('graph index', () => {
  it('infers the rank at the end of a 20,000-node chain without overflowing the stack', () => {
    const ix = indexGraph(chain(20_000), 13);
    expect(ix.rank('t19999')).toBe(2);
    expect(ix.consumers.get('t500')?.length).toBe(1);
  });

  it('leaves a rank unknown on a cycle, and infers through a broadcast from both inputs', () => {
    const cyclic: GraphProto = {
      node: [
        { opType: 'Relu', input: ['b'], output: ['a'] },
        { opType: 'Relu', input: ['a'], output: ['b'] },
      ],
    };
    expect(indexGraph(cyclic, 13).rank('a')).toBeUndefined();
    const g = chain(3);
    g.initializer = [{ name: 'bias', dims: [4] }];
    g.node!.push({ opType: 'Add', input: ['t2', 'bias'], output: ['sum'] });
    expect(indexGraph(g, 13).rank('sum')).toBe(2);
  });
});
