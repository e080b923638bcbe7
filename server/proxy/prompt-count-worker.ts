/**
 * The prompt-counting thread (see prompt-count.ts): counts the prompts too large to count on the
 * event loop, with a counter of its own whose caches persist between jobs.
 */
import { parentPort } from 'node:worker_threads';
import { countPromptWith, type PromptCountJob } from './prompt-count.js';
import { createTokenCounter, preloadEncodings } from './token-count.js';

const port = parentPort;
if (!port) throw new Error('prompt-count-worker: not in a worker thread');
preloadEncodings();
const counter = createTokenCounter();
port.on('message', ({ id, job }: { id: number; job: PromptCountJob }) => {
  port.postMessage({ id, tokens: countPromptWith(counter, job) });
});
