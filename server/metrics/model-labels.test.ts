import { describe, expect, it } from 'vitest';
import { MAX_MODEL_LABEL_CHARS, ModelLabels, OTHER_MODEL_LABEL } from './model-labels.js';

const priced = new Set(['gpt-4o', 'gpt-4o-mini']);
const labels = (max?: number) => new ModelLabels((model) => priced.has(model) || model.startsWith('priced-'), max);
const settled = (model: string, source: 'upstream' | 'estimated' | 'recovered', outputTokens: number) => ({ model, source, outputTokens });

describe('ModelLabels', () => {
  it.each<[string, (l: ModelLabels) => string, string]>([
    ['a priced model keeps its name', (l) => l.of('gpt-4o'), 'gpt-4o'],
    ['an unknown model folds into other', (l) => l.of('made-up-model'), OTHER_MODEL_LABEL],
    ['a model the upstream reported usage for is known', (l) => l.ofSettled(settled('llama-local', 'upstream', 0)), 'llama-local'],
    ['a model that delivered output is known', (l) => l.ofSettled(settled('llama-local', 'estimated', 12)), 'llama-local'],
    ['a prompt charged on our own count proves nothing', (l) => l.ofSettled(settled('made-up-model', 'estimated', 0)), OTHER_MODEL_LABEL],
    ['a priced model settled on our count keeps its name', (l) => l.ofSettled(settled('gpt-4o-mini', 'estimated', 0)), 'gpt-4o-mini'],
    ['an over-long name folds, priced or not', (l) => l.of(`priced-${'x'.repeat(MAX_MODEL_LABEL_CHARS)}`), OTHER_MODEL_LABEL],
  ])('%s', (_label, labelOf, expected) => {
    expect(labelOf(labels())).toBe(expected);
  });

  it('remembers a served model: its later refusals keep its label', () => {
    const l = labels();
    expect(l.of('llama-local')).toBe(OTHER_MODEL_LABEL);
    l.ofSettled(settled('llama-local', 'upstream', 5));
    expect(l.of('llama-local')).toBe('llama-local');
  });

  it('gives at most the fixed number of models a label; those labelled keep it', () => {
    const l = labels(3);
    expect(['priced-a', 'priced-b', 'priced-c', 'priced-d', 'gpt-4o'].map((m) => l.of(m))).toEqual(['priced-a', 'priced-b', 'priced-c', OTHER_MODEL_LABEL, OTHER_MODEL_LABEL]);
    expect(l.of('priced-b')).toBe('priced-b');
    expect(l.ofSettled(settled('llama-local', 'upstream', 5))).toBe(OTHER_MODEL_LABEL);
  });
});
