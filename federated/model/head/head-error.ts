/**
 * HeadError: a graph whose head Fedge cannot take apart, or a head that does not fit the model or weights it is
 * given. `node` names the node the reason is about (for a refused graph: the one that ends it), when there is one.
 */
export interface NodeRef {
  opType: string;
  name: string;
  output: string;
}

export class HeadError extends Error {
  override name = 'HeadError';
  readonly node: NodeRef | undefined;
  constructor(message: string, node?: NodeRef) {
    super(message);
    this.node = node;
  }
}
