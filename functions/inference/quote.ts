/**
 * Bounded quoting of caller-supplied text in error messages. An error names what was wrong (an input
 * name, a datatype, a value), but never echoes more than a few dozen characters of it: a 7 MB input
 * name must not come back whole, and a value nested 10⁵ deep must not be stringified at all.
 */

/** Longest run of caller text an error message quotes. */
export const QUOTE_CHARS = 64;

/** `'text'`, cut to `max` characters with an ellipsis (cut on a code point, never inside a surrogate pair). */
export function quote(text: string, max = QUOTE_CHARS): string {
  return `'${clip(text, max)}'`;
}

/** `text` cut to `max` characters with an ellipsis. */
export function clip(text: string, max = QUOTE_CHARS): string {
  if (text.length <= max) return text;
  let end = max;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // keep surrogate pairs whole
  return `${text.slice(0, end)}…`;
}

/** A short description of any JSON value for "expected …, got …": scalars shown (strings clipped), containers named. */
export function preview(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(clip(value));
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === undefined) return 'nothing';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** `[1,2,3]` for a shape, listing at most `max` dimensions (a caller may send a shape of 10⁵ ones). */
export function showShape(shape: readonly number[], max = 16): string {
  const dims =
    shape.length <= max ? shape.join(',') : `${shape.slice(0, max).join(',')},… (${shape.length} dimensions)`;
  return `[${dims}]`;
}

/** `'a', 'b', 'c'` for a list of names, each quoted and at most `max` of them. */
export function quoteList(names: readonly string[], max = 8): string {
  const shown = names.slice(0, max).map((n) => quote(n));
  if (names.length > max) shown.push(`and ${names.length - max} more`);
  return shown.join(', ');
}
