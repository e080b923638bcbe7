import { isRecord } from '../../util/is-record.js';

/**
 * What an image costs in Claude's prompt at most: Anthropic's formula is width × height / 750
 * tokens, and an image is scaled down to fit 1,568 px on its long side and ~1.15 megapixels, which
 * comes to about 1,600 tokens (https://docs.claude.com/en/docs/build-with-claude/vision). We do
 * not decode images, so every one is counted at that most.
 */
export const CLAUDE_IMAGE_TOKENS = 1_600;

/**
 * The system prompt Anthropic adds when a request has tools: 346 tokens for Claude 4 models with
 * `tool_choice` auto or none, up to 530 for Claude 3 Opus (the table under "Pricing" in
 * https://docs.claude.com/en/docs/agents-and-tools/tool-use/overview, 2025). The most of them.
 */
export const CLAUDE_TOOL_SYSTEM_PROMPT_TOKENS = 530;

/** A PDF page is text plus an image of the page; a document is counted as a few pages' worth. */
export const CLAUDE_DOCUMENT_TOKENS = 4 * (CLAUDE_IMAGE_TOKENS + 800);

/**
 * A Messages request's prompt in the shape the chat counter reads (token-count.ts), so that Claude
 * prompts are counted, and their history cached, by the same code as OpenAI's: the system prompt
 * becomes a system message; each content block its text (a tool call its name and input JSON, a
 * tool result its content); images and documents a fixed allowance. Thinking blocks of earlier
 * turns are counted as text, though Anthropic may drop them from the context: over, never under.
 * Tools add the system prompt Anthropic writes for them.
 * Returns the chat body and the tokens counted outside it (images, documents).
 */
export function messagesPromptAsChat(body: unknown): { chat: Record<string, unknown>; extraTokens: number } {
  const request = isRecord(body) ? body : {};
  let extraTokens = 0;
  const textOf = (content: unknown): string | Array<{ type: 'text'; text: string }> => {
    if (typeof content === 'string') return content;
    const parts: Array<{ type: 'text'; text: string }> = [];
    for (const block of Array.isArray(content) ? content : [content]) {
      if (!isRecord(block)) {
        if (block !== undefined && block !== null) parts.push({ type: 'text', text: JSON.stringify(block) });
        continue;
      }
      switch (block.type) {
        case 'text':
          parts.push({ type: 'text', text: typeof block.text === 'string' ? block.text : JSON.stringify(block.text ?? '') });
          break;
        case 'thinking':
          parts.push({ type: 'text', text: typeof block.thinking === 'string' ? block.thinking : '' });
          break;
        case 'redacted_thinking':
          break; // opaque data the model reads back in its own form; no text of ours to count
        case 'image':
          extraTokens += CLAUDE_IMAGE_TOKENS;
          break;
        case 'document':
          extraTokens += CLAUDE_DOCUMENT_TOKENS;
          break;
        case 'tool_use':
        case 'server_tool_use':
          parts.push({ type: 'text', text: `${String(block.name ?? '')} ${JSON.stringify(block.input ?? {})}` });
          break;
        case 'tool_result': {
          const inner = textOf(block.content);
          if (typeof inner === 'string') parts.push({ type: 'text', text: inner });
          else parts.push(...inner);
          break;
        }
        default: {
          // Anything else (search results, web fetches, blocks to come): its JSON, without the
          // cache marker, which is not prompt text.
          const { cache_control: _marker, ...rest } = block;
          parts.push({ type: 'text', text: JSON.stringify(rest) });
        }
      }
    }
    return parts;
  };
  const messages: Array<{ role: string; content: unknown }> = [];
  if (request.system !== undefined && request.system !== null) messages.push({ role: 'system', content: textOf(request.system) });
  for (const message of Array.isArray(request.messages) ? request.messages : []) {
    const m = isRecord(message) ? message : {};
    messages.push({ role: typeof m.role === 'string' ? m.role : 'user', content: textOf(m.content) });
  }
  if (Array.isArray(request.tools) && request.tools.length > 0) extraTokens += CLAUDE_TOOL_SYSTEM_PROMPT_TOKENS;
  return { chat: { messages, ...(request.tools === undefined ? {} : { tools: request.tools }) }, extraTokens };
}
