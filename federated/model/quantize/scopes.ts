/**
 * The graphs of a model and how names resolve between them: the main graph and every subgraph (If branches,
 * Loop and Scan bodies, recursively), each knowing its parent, so a node input can be traced to the initializer
 * it reads — in its own graph or in an enclosing one (ONNX's outer-scope references).
 */
import type { GraphProto, NodeProto, TensorProto } from '../onnx-graph.ts';

export interface Scope {
  graph: GraphProto;
  parent: Scope | null;
  /** 'main', or the attribute path to this subgraph: `If_25.then_branch/If_177.else_branch` */
  path: string;
  initializers: Map<string, TensorProto>;
  /** names this graph computes: its formal inputs and its nodes' outputs (they shadow enclosing names) */
  computed: Set<string>;
}

/** A reference to an initializer: the node reading it, the graph the node is in, and which input it is. */
export interface Reference {
  node: NodeProto;
  scope: Scope;
  input: number;
}

/** The initializer a name stands for, with the graph that owns it. */
export interface Owned {
  tensor: TensorProto;
  owner: Scope;
}

/** Every graph of the model, the main graph first, each subgraph after the graph that holds it. */
export function scopesOf(main: GraphProto): Scope[] {
  const scopes: Scope[] = [];
  const visit = (graph: GraphProto, parent: Scope | null, path: string) => {
    const initializers = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
    const computed = new Set([
      ...(graph.input ?? []).map((i) => i.name!),
      ...(graph.node ?? []).flatMap((n) => n.output ?? []),
    ]);
    // The main graph may list initializers as inputs too (IR < 4 exporters: defaults a caller may override). They
    // are weights here, as they were to the exporter; a subgraph's formal input always shadows.
    if (!parent) for (const name of initializers.keys()) computed.delete(name);
    const scope: Scope = { graph, parent, path, initializers, computed };
    scopes.push(scope);
    for (const n of graph.node ?? []) {
      for (const a of n.attribute ?? []) {
        const label = `${nodeLabel(n)}.${a.name}`;
        const at = parent ? `${path}/${label}` : label;
        if (a.g) visit(a.g, scope, at);
        (a.graphs ?? []).forEach((g, i) => visit(g, scope, `${at}[${i}]`));
      }
    }
  };
  visit(main, null, 'main');
  return scopes;
}

export const nodeLabel = (n: NodeProto) => n.name || `${n.opType}(${n.output?.[0] ?? ''})`;

/** The initializer `name` means inside `scope`; undefined when the name is computed (an input, a node output) or unknown. */
export function resolve(scope: Scope, name: string): Owned | undefined {
  for (let s: Scope | null = scope; s; s = s.parent) {
    if (s.computed.has(name)) return undefined;
    const tensor = s.initializers.get(name);
    if (tensor) return { tensor, owner: s };
  }
  return undefined;
}

/** Every node input, in every graph, that reads an initializer — by initializer. */
export function references(scopes: Scope[]): Map<TensorProto, Reference[]> {
  const refs = new Map<TensorProto, Reference[]>();
  for (const scope of scopes) {
    for (const node of scope.graph.node ?? []) {
      (node.input ?? []).forEach((name, input) => {
        const owned = name ? resolve(scope, name) : undefined;
        if (owned) refs.set(owned.tensor, [...(refs.get(owned.tensor) ?? []), { node, scope, input }]);
      });
    }
  }
  return refs;
}

/** Names not yet used anywhere in the model (values and nodes share one set): `base`, else `base_1`, `base_2`, … */
export function nameGenerator(scopes: Scope[]): (base: string) => string {
  const taken = new Set<string>();
  for (const { graph } of scopes) {
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) taken.add(v.name!);
    for (const t of graph.initializer ?? []) taken.add(t.name!);
    for (const n of graph.node ?? []) {
      taken.add(n.name ?? '');
      for (const x of [...(n.input ?? []), ...(n.output ?? [])]) taken.add(x);
    }
  }
  return (base) => {
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };
}
