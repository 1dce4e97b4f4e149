/**
 * docs/http-api.md's route tables against the route declarations (functions/contract): every declared route is in a
 * table once, every row is a declared route, and each row's errors column lists exactly the 4xx/5xx statuses the
 * route declares (its own and its middleware's, contract/errors.ts). Rows write `{v}` and `{r}` for `{version}` and
 * `{round}`, `[/versions/{v}]` for a route that comes twice, and may add a query (`?after=&limit=`, `[?warmup=…]`).
 */
import { describe, expect, it } from 'vitest';
import doc from '../../../docs/http-api.md?raw';
import { ROUTES } from '../../../functions/contract/index.ts';
import { routeErrors } from '../../../functions/contract/errors.ts';
import type { Route } from '../../../functions/contract/route.ts';

/** `METHOD /path` → the statuses of its errors column, for every row of a table whose first cell is a route. */
function documentedRoutes(markdown: string): [string, number[]][] {
  const rows: [string, number[]][] = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').slice(1, -1);
    const route = /^\s*`(GET|POST|PUT|DELETE) ([^`]+)`\s*$/.exec(cells[0] ?? '');
    if (!route) continue;
    const statuses = [...(cells.at(-1) ?? '').matchAll(/\b[45]\d\d\b/g)].map((m) => Number(m[0]));
    const path = route[2]!
      .replace(/\[?\?.*$/, '') // a query, optional or not
      .replaceAll('{v}', '{version}')
      .replaceAll('{r}', '{round}');
    const optional = /\[([^\]]+)\]/.exec(path);
    const paths = optional ? [path.replace(optional[0], ''), path.replace(optional[0], optional[1]!)] : [path];
    for (const p of paths) rows.push([`${route[1]} ${p}`, [...new Set(statuses)].sort((a, b) => a - b)]);
  }
  return rows;
}

const declared = new Map(
  (Object.values(ROUTES) as Route[]).map((r) => [
    `${r.method.toUpperCase()} ${r.path}`,
    Object.keys(routeErrors(r))
      .map(Number)
      .sort((a, b) => a - b),
  ]),
);

describe('docs/http-api.md route tables', () => {
  const rows = documentedRoutes(doc);

  it('list every declared route once, and no other', () => {
    const listed = rows.map(([route]) => route);
    expect(
      listed.filter((r, i) => listed.indexOf(r) !== i),
      'listed twice',
    ).toEqual([]);
    expect(
      [...declared.keys()].filter((r) => !listed.includes(r)),
      'declared, not listed',
    ).toEqual([]);
    expect(
      listed.filter((r) => !declared.has(r)),
      'listed, not declared',
    ).toEqual([]);
  });

  it('give each route exactly the error statuses it declares', () => {
    const wrong = rows
      .filter(([route, statuses]) => declared.has(route) && `${declared.get(route)}` !== `${statuses}`)
      .map(([route, statuses]) => `${route}: the doc says ${statuses.join(', ')}, the contract ${declared.get(route)}`);
    expect(wrong).toEqual([]);
  });
});
