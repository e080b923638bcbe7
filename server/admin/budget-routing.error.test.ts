import { describe, expect, it } from 'vitest';
import { testService } from '../testing/harness.js';

const budget = { scope: 'user:alice', window: { kind: 'month', timeZone: 'UTC' }, limitTokens: 1000 };

describe('admin API: budgets of some models, fallback rules and upstream scopes, bad input', () => {
  it.each([
    [{ ...budget, models: [] }, 'models: must name at least one model'],
    [{ ...budget, models: ['gpt 5'] }, 'models.0: must be a model id or a glob'],
    [{ ...budget, models: 'gpt-5*' }, 'models: Invalid input: expected array'],
    [{ ...budget, models: ['gpt-5,o3'] }, 'models.0: must not hold a comma'],
    [{ ...budget, models: Array.from({ length: 50 }, (_, i) => `${'m'.repeat(200)}-${i}`) }, 'models: must be at most 1000 characters together'],
    [{ ...budget, fallback: [{ at: 90, to: 'a' }, { at: 80, to: 'b' }] }, 'fallback: rules must be in strictly increasing order of "at"'],
    [{ ...budget, fallback: [{ at: 0, to: 'a' }] }, 'fallback.0.at: Too small'],
    [{ ...budget, fallback: [{ at: 90, to: 'gpt-*' }] }, 'fallback.0.to: must be one model id, not a glob'],
    [{ ...budget, fallback: [{ at: 90, to: 'a', when: 'x' }] }, 'Unrecognized key: "when"'],
    [{ ...budget, fallback: [{ at: 90, to: 'a' }], onLimit: 'downgrade', downgradeTo: 'b' }, 'fallback: use either "fallback" rules or onLimit "downgrade"'],
    [{ ...budget, fallback: [{ at: 90, to: 'a' }], onLimit: 'alert-only' }, 'fallback: an "alert-only" budget never limits'],
    [{ ...budget, scope: 'upstream:' }, 'scope: scope id must be'],
    [{ ...budget, scope: 'upstream:nope' }, 'scope: no upstream "nope" in the config'],
  ])('%j → 4xx naming the problem, nothing stored', async (body, message) => {
    const svc = testService();
    await svc.admin('POST', '/admin/users', { id: 'alice' });
    const response = await svc.admin('PUT', '/admin/budgets', body);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(message);
    expect(await svc.store.listBudgets()).toEqual([]);
  });
});
