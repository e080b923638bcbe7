import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  child: ChildProcess;
  output: () => string;
  baseUrl: string;
}

/**
 * Starts the server the way `npm start` does (on a free port unless `env` says otherwise) and
 * waits for its banner. The caller kills it (see `running`).
 */
export function startServerProcess(env: Record<string, string>, running: ChildProcess[], timeoutMs = 15_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'scripts', 'start.js')], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    const check = () => {
      const match = /Next: add a user[\s\S]*budgets set/.exec(out) && /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, output: () => out, baseUrl: match[1] });
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
}
