/**
 * The edits a quantization plan makes, applied at the end in one pass: an initializer replaced by a node that
 * computes it under the same name (DequantizeLinear or Cast, placed first in the graph that owns the initializer,
 * so references from that graph and from its subgraphs still resolve), and nodes replaced by others.
 */
import type { NodeProto, TensorProto } from '../onnx-graph.ts';
import type { Scope } from './scopes.ts';

export class Rewrite {
  private readonly producers = new Map<Scope, NodeProto[]>();
  private readonly removed = new Map<Scope, Set<string>>();
  private readonly added = new Map<Scope, TensorProto[]>();
  private readonly nodes = new Map<NodeProto, NodeProto[]>();

  /**
   * `owner`'s initializer `name` gives way to the `added` initializers and becomes the output of `producer` (none
   * when no node reads the name any more).
   */
  replaceInitializer(owner: Scope, name: string, added: TensorProto[], producer: NodeProto | undefined): void {
    if (producer) this.producers.set(owner, [...(this.producers.get(owner) ?? []), producer]);
    this.addInitializers(owner, added);
    this.removed.set(owner, (this.removed.get(owner) ?? new Set()).add(name));
  }

  addInitializers(owner: Scope, added: TensorProto[]): void {
    this.added.set(owner, [...(this.added.get(owner) ?? []), ...added]);
  }

  /** `n` (in any graph) becomes `nodes`, in its place. */
  replaceNode(n: NodeProto, nodes: NodeProto[]): void {
    this.nodes.set(n, nodes);
  }

  apply(scopes: Scope[]): void {
    for (const scope of scopes) {
      const { graph } = scope;
      graph.node = [
        ...(this.producers.get(scope) ?? []),
        ...(graph.node ?? []).flatMap((n) => this.nodes.get(n) ?? [n]),
      ];
    }
    // An added initializer no node reads (a dynamic plan used the transposed copy, or no zero point) is dropped.
    const read = new Set(scopes.flatMap(({ graph }) => (graph.node ?? []).flatMap((n) => n.input ?? [])));
    for (const scope of scopes) {
      const { graph } = scope;
      const removed = this.removed.get(scope) ?? new Set();
      const added = (this.added.get(scope) ?? []).filter((t) => read.has(t.name!));
      graph.initializer = [...(graph.initializer ?? []).filter((t) => !removed.has(t.name!)), ...added];
      // An initializer the main graph also listed as an input is now a node's output: it cannot stay an input
      // (two producers). The inputs a caller feeds — those that are not initializers — are untouched.
      if (!scope.parent) graph.input = (graph.input ?? []).filter((i) => !removed.has(i.name!));
    }
  }
}
