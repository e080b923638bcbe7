import { isRecord } from '../../util/is-record.js';
import type { TokenCounter } from '../token-count.js';

/**
 * The prompt of an Ollama request, for admission: its text put in the chat shape the token counter
 * knows (so a conversation's history is counted once, from the counter's per-message cache), plus
 * the token ids a generate request hands back (`context`, one token each). No local tokenizer is
 * exact for Llama, Qwen or Gemma; the ledger takes Ollama's own `prompt_eval_count`.
 *
 * - chat: `messages` (their `content`, `thinking`, `tool_calls` and `tool_name` as text) and `tools`;
 * - generate: `system`, `prompt` and `suffix`;
 * - both: `images` (base64, never read as text) as one image part each, and a JSON-schema `format`.
 */
export function countOllamaPrompt(tokens: TokenCounter, model: string, body: unknown): number {
  if (!isRecord(body)) return tokens.countChatPrompt(model, body);
  const context = Array.isArray(body.context) ? body.context.length : 0;
  return tokens.countChatPrompt(model, asChatPrompt(body)) + context;
}

function asChatPrompt(body: Record<string, unknown>): Record<string, unknown> {
  const messages = Array.isArray(body.messages) ? body.messages.map(asChatMessage) : generateMessages(body);
  const format = isRecord(body.format) ? { type: 'json_schema', json_schema: body.format } : undefined;
  return { messages, tools: body.tools, response_format: format };
}

function generateMessages(body: Record<string, unknown>): unknown[] {
  const messages: unknown[] = [];
  if (typeof body.system === 'string' && body.system !== '') messages.push({ role: 'system', content: body.system });
  messages.push(asChatMessage({ role: 'user', content: body.prompt ?? '', images: body.images }));
  if (typeof body.suffix === 'string' && body.suffix !== '') messages.push({ role: 'user', content: body.suffix });
  return messages;
}

/**
 * A message as the chat counter reads it: unchanged (a plain `{role, content}` keeps the counter's
 * fast path) unless it has images, which become image parts beside its text.
 */
function asChatMessage(message: unknown): unknown {
  if (!isRecord(message) || message.images === undefined) return message;
  const { images, content, ...rest } = message;
  const pictures = Array.isArray(images) ? images.map(() => ({ type: 'image_url', image_url: {} })) : [];
  return { ...rest, content: [{ type: 'text', text: typeof content === 'string' ? content : '' }, ...pictures] };
}
