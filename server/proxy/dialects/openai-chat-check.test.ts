import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chatRequestSchema } from './openai-chat.js';
import { quickChatRequest } from './openai-chat-check.js';

/** What zod would give, as JSON text: the same text means the same keys, order and values. */
const viaZod = (value: unknown): string | null => {
  const parsed = chatRequestSchema.safeParse(value);
  return parsed.success ? JSON.stringify(parsed.data) : null;
};

/** Values of every kind a client may put in a field, right or wrong. */
const anyValue = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 200 }),
  fc.constantFrom(0, 1, 128, 129, 1.5, 1e300, -0, 2 ** 53, Number.MAX_SAFE_INTEGER),
  fc.string({ maxLength: 8 }),
  fc.constant('x'.repeat(257)),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.constantFrom('include_usage', 'a', 'b'), fc.oneof(fc.boolean(), fc.constant(null), fc.integer()), { maxKeys: 2 }),
);

/** Mostly a value the schema takes, sometimes anything. */
const mostly = <T>(right: fc.Arbitrary<T>) => fc.oneof({ arbitrary: right, weight: 5 }, { arbitrary: anyValue, weight: 1 });
const limit = fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.constant(null));

const message = mostly(
  fc.oneof(
    fc.record({ role: fc.constantFrom('user', 'system', 'assistant'), content: fc.string({ maxLength: 20 }) }),
    fc.record({ content: fc.string(), role: fc.constantFrom('user', 'tool'), name: fc.string({ maxLength: 4 }) }),
    fc.dictionary(fc.constantFrom('role', 'content', 'x'), fc.oneof(fc.string({ maxLength: 3 }), anyValue), { maxKeys: 3 }),
  ),
);

/** A chat body: the fields the schema reads (present or not, mostly right) and others, in any order. */
const body = fc
  .record(
    {
      model: mostly(fc.constantFrom('gpt-4o-mini', 'o3', 'm'.repeat(256))),
      messages: mostly(fc.array(message, { minLength: 1, maxLength: 4 })),
      stream: mostly(fc.oneof(fc.boolean(), fc.constant(null))),
      stream_options: mostly(fc.oneof(fc.record({ include_usage: fc.boolean() }), fc.record({ a: fc.integer(), include_usage: fc.boolean() }, { requiredKeys: ['a'] }), fc.constant(null))),
      max_tokens: mostly(limit),
      max_completion_tokens: mostly(limit),
      n: mostly(fc.oneof(fc.integer({ min: 1, max: 128 }), fc.constant(null))),
      user: mostly(fc.string({ maxLength: 8 })),
      temperature: fc.double({ noNaN: true, noDefaultInfinity: true }),
      tools: fc.array(fc.record({ type: fc.constant('function') }), { maxLength: 1 }),
    },
    { requiredKeys: ['model', 'messages'] },
  )
  .chain((fields) => fc.shuffledSubarray(Object.entries(fields), { minLength: Object.keys(fields).length }).map((entries) => Object.fromEntries(entries)));

describe('quickChatRequest: what chatRequestSchema gives, or nothing', () => {
  it('never takes a body zod refuses, and gives exactly what zod gives for one it takes', () => {
    let taken = 0;
    fc.assert(
      fc.property(body, (value) => {
        // Through JSON, as bodies arrive.
        const parsed: unknown = JSON.parse(JSON.stringify(value));
        const quick = quickChatRequest(parsed);
        if (quick === null) return;
        taken++;
        expect(JSON.stringify(quick)).toBe(viaZod(parsed));
      }),
      { numRuns: 3_000 },
    );
    // Enough bodies were taken for the comparison to mean something.
    expect(taken).toBeGreaterThan(100);
  });

  it('takes the requests of every day, with their fields in whatever order they came', () => {
    const bodies = [
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
      '{"messages":[{"content":"be terse","role":"system"},{"role":"user","content":"hi","name":"bob"}],"temperature":0.7,"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}',
      '{"model":"o3","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_completion_tokens":500,"n":2,"user":"u-1","tools":[{"type":"function","function":{"name":"f"}}]}',
      '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":null,"stream":null,"stream_options":null,"n":null}',
    ];
    for (const text of bodies) {
      const value: unknown = JSON.parse(text);
      const quick = quickChatRequest(value);
      expect(quick, text).not.toBeNull();
      expect(JSON.stringify(quick)).toBe(viaZod(value));
    }
  });

  it('leaves to zod what it must refuse or drop', () => {
    for (const text of [
      '{"model":"gpt-4o-mini","messages":[]}',
      '{"model":"gpt-4o-mini","messages":[{"content":"no role"}]}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user"}],"max_tokens":0}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user"}],"user":null}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user"}],"__proto__":{"x":1}}',
      '[{"model":"gpt-4o-mini"}]',
    ]) {
      expect(quickChatRequest(JSON.parse(text)), text).toBeNull();
    }
  });
});
