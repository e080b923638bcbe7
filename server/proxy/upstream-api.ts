import type { KeyHeader } from './upstreams.js';

/** The wire formats the proxy speaks, each to clients and to upstreams alike. */
export const UPSTREAM_APIS = ['openai', 'anthropic', 'gemini', 'ollama'] as const;

export type UpstreamApi = (typeof UPSTREAM_APIS)[number];

/** How each API takes the upstream's key, as its own SDK sends it. */
export const UPSTREAM_KEY_HEADERS: Readonly<Record<UpstreamApi, KeyHeader>> = {
  openai: { name: 'authorization', prefix: 'Bearer ' },
  anthropic: { name: 'x-api-key', prefix: '' },
  gemini: { name: 'x-goog-api-key', prefix: '' },
  // Ollama itself takes no key; one behind an authenticating reverse proxy takes a bearer token.
  ollama: { name: 'authorization', prefix: 'Bearer ' },
};

/** The name people know each API by, for messages. */
export const API_TITLES: Readonly<Record<UpstreamApi, string>> = {
  openai: 'OpenAI',
  anthropic: 'Anthropic Messages',
  gemini: 'Gemini',
  ollama: 'Ollama',
};
