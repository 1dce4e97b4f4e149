/** Tiny DOM helpers for the web app (no framework: a few panels of plain, accessible HTML). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

type Props<K extends keyof HTMLElementTagNameMap> = Partial<Omit<HTMLElementTagNameMap[K], 'dataset'>> & {
  dataset?: Record<string, string>;
};

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props<K> = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const { dataset, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset) Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
}

/** Shows a message in a status line (role="status" regions are announced by screen readers). */
export function say(id: string, text: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  const s = byId(id);
  s.textContent = text;
  s.dataset.kind = kind;
}

export const errorText = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

export function fillSelect(select: HTMLSelectElement, options: { value: string; label: string }[], keep = true): void {
  const previous = select.value;
  select.replaceChildren(...options.map((o) => el('option', { value: o.value, textContent: o.label })));
  if (keep && options.some((o) => o.value === previous)) select.value = previous;
}
