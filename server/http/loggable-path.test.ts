import { describe, expect, it } from 'vitest';
import { loggablePath } from './loggable-path.js';

describe('loggablePath', () => {
  it.each([
    ['/ollama/k/lq-AbC_123-xyz/api/chat', '/ollama/k/…/api/chat'],
    ['/ollama/k/not-a-key/api/tags', '/ollama/k/…/api/tags'],
    ['/ollama/k/', '/ollama/k/…'],
    ['/ollama/lq-AbC_123/api/chat', '/ollama/lq-…/api/chat'],
    ['/v1/chat/completions', '/v1/chat/completions'],
    ['/ollama/api/chat', '/ollama/api/chat'],
  ])('%s → %s', (path, shown) => {
    expect(loggablePath(path)).toBe(shown);
  });
});
