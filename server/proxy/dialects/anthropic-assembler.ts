import { isRecord } from '../../util/is-record.js';
import type { Assembler } from '../assembled-answer.js';

interface BlockState {
  block: Record<string, unknown>;
  /** A tool_use block's input, as JSON text arriving in pieces. */
  inputJson: string | null;
}

/** Anthropic Messages: a stream's events merged into the `message` a request without `stream` gets. */
export class AnthropicAnswerAssembler implements Assembler {
  private message: Record<string, unknown> = {};
  private readonly blocks = new Map<number, BlockState>();
  private usage: Record<string, unknown> = {};
  error: Record<string, unknown> | null = null;

  add(event: Record<string, unknown>): void {
    switch (event.type) {
      case 'message_start':
        if (isRecord(event.message)) {
          this.message = { ...event.message };
          if (isRecord(event.message.usage)) this.usage = { ...event.message.usage };
        }
        return;
      case 'content_block_start':
        if (typeof event.index === 'number' && isRecord(event.content_block)) {
          const block = { ...event.content_block };
          this.blocks.set(event.index, { block, inputJson: block.type === 'tool_use' || block.type === 'server_tool_use' ? '' : null });
        }
        return;
      case 'content_block_delta':
        if (typeof event.index === 'number' && isRecord(event.delta)) this.applyDelta(event.index, event.delta);
        return;
      case 'message_delta':
        if (isRecord(event.delta)) Object.assign(this.message, event.delta);
        if (isRecord(event.usage)) for (const [field, value] of Object.entries(event.usage)) if (value !== null && value !== undefined) this.usage[field] = value;
        return;
      case 'error':
        this.error = isRecord(event.error) ? event.error : { message: 'The upstream failed.' };
        return;
      default:
        return;
    }
  }

  private applyDelta(index: number, delta: Record<string, unknown>): void {
    const state = this.blocks.get(index);
    if (!state) return;
    const { block } = state;
    const append = (field: string, piece: unknown) => {
      if (typeof piece === 'string') block[field] = (typeof block[field] === 'string' ? block[field] : '') + piece;
    };
    if (delta.type === 'text_delta') append('text', delta.text);
    else if (delta.type === 'thinking_delta') append('thinking', delta.thinking);
    else if (delta.type === 'signature_delta') append('signature', delta.signature);
    else if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') state.inputJson = (state.inputJson ?? '') + delta.partial_json;
    else if (delta.type === 'citations_delta' && delta.citation !== undefined) block.citations = [...(Array.isArray(block.citations) ? block.citations : []), delta.citation];
  }

  answer(): Record<string, unknown> {
    const content = [...this.blocks.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, { block, inputJson }]) => {
        if (inputJson === null) return block;
        // A tool's input arrives as JSON text; an empty one is `{}`, as Anthropic sends it.
        try {
          return { ...block, input: inputJson === '' ? (block.input ?? {}) : JSON.parse(inputJson) };
        } catch {
          return { ...block, input: {} };
        }
      });
    return { ...this.message, content, usage: this.usage };
  }
}
