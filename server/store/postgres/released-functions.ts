/**
 * A later migration's functions derived from the text an earlier one released, with named pieces
 * replaced: no second copy of a long body, and a migration that refuses to run should that text
 * ever differ from what was released (migrations 15 and 16).
 */

/** The function that `create` starts in `sql` (a released migration's text), up to its END. */
export function releasedFunction(sql: string, create: string, migration: number): string {
  const start = sql.indexOf(create);
  const end = sql.indexOf('END $fn$;', start);
  if (start < 0 || end < 0) throw new Error(`migration ${migration}: no ${create} to start from`);
  return sql.slice(start, end + 'END $fn$;'.length);
}

/** `text` with `from`, which must occur exactly once, replaced by `to`. */
export function replacedOnce(text: string, from: string, to: string, what: string, migration: number): string {
  if (text.split(from).length !== 2) throw new Error(`migration ${migration}: ${what} is not as released`);
  return text.replace(from, () => to);
}
