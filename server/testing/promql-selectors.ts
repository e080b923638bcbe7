/**
 * The metric selectors of a PromQL expression: each metric name it reads and the label names its
 * `{…}` matchers use. A small tokenizer, not a parser: enough to check that shipped dashboards and
 * rules name metrics that exist, which a typo or a renamed metric would otherwise break silently
 * (Prometheus answers an unknown name with an empty result, not an error).
 */
export interface MetricSelector {
  metric: string;
  /** Label names in the selector's matchers (`{model=~"$model"}` → model). */
  labels: string[];
}

/** Words that are not metric names where they stand: aggregators, operators, modifiers. */
const KEYWORDS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan',
]);

/** Keywords followed by a parenthesised list of label names, not an expression. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

const IDENTIFIER = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const NUMBER = /(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)([smhdwy]|ms)?/iy;
const GRAFANA_VARIABLE = /\$(\{[^}]*\}|[a-zA-Z0-9_]+)/y;

export function metricSelectors(expr: string): MetricSelector[] {
  const found: MetricSelector[] = [];
  let i = 0;
  const match = (pattern: RegExp): string | null => {
    pattern.lastIndex = i;
    const m = pattern.exec(expr);
    return m ? m[0] : null;
  };
  /** Index just past the bracket that closes the one at `start` (strings inside are skipped). */
  const closing = (start: number, open: string, close: string): number => {
    let depth = 0;
    for (let j = start; j < expr.length; j++) {
      const c = expr[j];
      if (c === '"' || c === "'" || c === '`') j = endOfString(expr, j) - 1;
      else if (c === open) depth++;
      else if (c === close && --depth === 0) return j + 1;
    }
    throw new Error(`unclosed "${open}" at ${start} in: ${expr}`);
  };
  const skipSpaces = (from: number) => {
    let j = from;
    while (j < expr.length && /\s/.test(expr[j] ?? '')) j++;
    return j;
  };

  while (i < expr.length) {
    const c = expr[i] ?? '';
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      i = endOfString(expr, i);
    } else if (c === '$') {
      i += match(GRAFANA_VARIABLE)?.length ?? 1;
    } else if (c === '[') {
      i = closing(i, '[', ']'); // a range or subquery: durations and variables
    } else if (c === '{') {
      // A selector without a name in front (`{__name__="…"}`): not one this check can follow.
      throw new Error(`a selector without a metric name in: ${expr}`);
    } else if (/[0-9.]/.test(c)) {
      i += match(NUMBER)?.length ?? 1;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const word = match(IDENTIFIER) ?? c;
      i += word.length;
      const next = skipSpaces(i);
      if (LABEL_LISTS.has(word.toLowerCase())) {
        if (expr[next] === '(') i = closing(next, '(', ')');
      } else if (KEYWORDS.has(word.toLowerCase())) {
        // an aggregator's or operator's word
      } else if (expr[next] === '(') {
        // a function call: its arguments are read as the loop goes on
      } else if (expr[next] === '{') {
        const end = closing(next, '{', '}');
        found.push({ metric: word, labels: matcherLabels(expr.slice(next + 1, end - 1)) });
        i = end;
      } else {
        found.push({ metric: word, labels: [] });
      }
    } else {
      i++; // operators, parentheses, commas
    }
  }
  return found;
}

/** Index just past the string literal starting at `start` (PromQL's quotes; backslash escapes in the first two). */
function endOfString(expr: string, start: number): number {
  const quote = expr[start];
  for (let j = start + 1; j < expr.length; j++) {
    if (expr[j] === '\\' && quote !== '`') j++;
    else if (expr[j] === quote) return j + 1;
  }
  throw new Error(`unclosed string at ${start} in: ${expr}`);
}

/** `job=~"$job", outcome!="ok"` → job, outcome. */
function matcherLabels(matchers: string): string[] {
  const labels: string[] = [];
  const pattern = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)\s*,?/y;
  let at = 0;
  while (at < matchers.length && matchers.slice(at).trim() !== '') {
    pattern.lastIndex = at;
    const m = pattern.exec(matchers);
    if (!m?.[1]) throw new Error(`cannot read the matchers {${matchers}}`);
    labels.push(m[1]);
    at = pattern.lastIndex;
  }
  return labels;
}
