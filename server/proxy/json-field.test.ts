import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { topLevelField } from './json-field.js';

const field = (text: string, key = 'usage') => topLevelField(Buffer.from(text), key);

describe('topLevelField', () => {
  it.each([
    ['at the end', '{"id":"x","usage":{"prompt_tokens":3}}', '{"prompt_tokens":3}'],
    ['in the middle', '{"usage":{"a":[1,{"b":2}]},"model":"m"}', '{"a":[1,{"b":2}]}'],
    ['a scalar', '{"usage":12,"x":1}', '12'],
    ['null', '{"usage":null}', 'null'],
    ['with whitespace around', ' {\n  "usage" : { "total_tokens" : 5 } ,\n "x": 1 }\n', '{ "total_tokens" : 5 }'],
    ['a duplicated key: the last, as JSON.parse keeps', '{"usage":{"n":1},"usage":{"n":2}}', '{"n":2}'],
    ['non-ASCII text before it', '{"c":"héllo 你好 \\u00e9","usage":{"n":1}}', '{"n":1}'],
  ])('finds the field %s', (_, text, expected) => {
    expect(field(text)).toBe(expected);
    expect(JSON.parse(field(text) as string)).toEqual(JSON.parse(text).usage);
  });

  it.each([
    ['only nested', '{"choices":[{"message":{"usage":{"n":1}}}]}'],
    ['only inside a string', '{"content":"{\\"usage\\":{\\"n\\":1}}"}'],
    ['as a value, not a key', '{"object":"usage","n":1}'],
    ['after escaped backslashes', '{"content":"C:\\\\","object":"usage"}'],
    ['absent', '{"id":"x"}'],
  ])('ignores "usage" %s', (_, text) => {
    expect(field(text)).toBeNull();
  });

  it('agrees with JSON.parse on a real chat completion', () => {
    const answer = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: 'He said "usage": {"prompt_tokens": 999} \\ and left.', tool_calls: [{ function: { name: 'f', arguments: '{"usage":{"prompt_tokens":1}}' } }] }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19, prompt_tokens_details: { cached_tokens: 4 } },
      system_fingerprint: 'fp',
    };
    for (const text of [JSON.stringify(answer), JSON.stringify(answer, null, 2)]) {
      expect(JSON.parse(field(text) as string)).toEqual(answer.usage);
    }
  });

  it.each([
    ['not an object', '[{"usage":1}]'],
    ['unterminated', '{"usage":{"n":1}'],
    ['an unterminated string', '{"usage":{"n":1},"x":"abc}'],
    ['trailing text', '{"usage":{"n":1}} garbage'],
    ['too many closers', '{"usage":1}}'],
    ['empty', ''],
  ])('gives null for text that is %s', (_, text) => {
    expect(field(text)).toBeNull();
  });

  it('finds the field after strings full of quotes and backslashes', () => {
    const text = fc.string({ maxLength: 150, unit: fc.constantFrom('a', '"', '\\', 'é', 'u', '/') });
    fc.assert(
      fc.property(fc.array(text, { maxLength: 4 }), fc.jsonValue(), (strings, usage) => {
        const answer: Record<string, unknown> = {};
        strings.forEach((value, i) => (answer[`s${i}`] = value));
        answer.usage = usage;
        answer.after = strings.at(-1) ?? '';
        const found = field(JSON.stringify(answer));
        expect(JSON.parse(found as string)).toEqual(JSON.parse(JSON.stringify(usage)));
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with JSON.parse on any object, compact or indented', () => {
    const key = fc.constantFrom('usage', 'id', 'usage2', 'use', 'choices');
    const object = fc.dictionary(key, fc.jsonValue(), { maxKeys: 6 });
    fc.assert(
      fc.property(object, fc.constantFrom(0, 2), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        const found = field(text);
        // Compared with what JSON.parse reads back (JSON has no -0, so `value` itself may differ).
        const { usage } = JSON.parse(text) as { usage?: unknown };
        if (usage === undefined) expect(found).toBeNull();
        else expect(JSON.parse(found as string)).toEqual(usage);
      }),
      { numRuns: 500 },
    );
  });
});
