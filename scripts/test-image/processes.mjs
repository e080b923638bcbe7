// Running the tools the image test drives (podman, debootstrap, npm, tar, psql): their output kept,
// a non-zero exit an error that carries it.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

/**
 * Runs `command args…` and resolves with its output; rejects with the command line, exit code and
 * the tail of stderr when it fails (unless `allowFailure`). `logFile` gets stdout and stderr as
 * they come instead of keeping them (for the long build).
 */
export function run(command, args, { input, env, cwd, allowFailure = false, logFile, timeoutMs = 30 * 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: env ?? process.env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
    child.stdout.on('data', (chunk) => (log ? log.write(chunk) : (stdout += chunk)));
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
      log?.write(chunk);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${command}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      log?.end();
      const result = { code: code ?? -1, signal, stdout, stderr };
      if (code === 0 || allowFailure) return resolve(result);
      const tail = stderr.trim().split('\n').slice(-15).join('\n');
      reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}${logFile ? ` (log: ${logFile})` : ''}\n${tail}`));
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** Whether `command` is on the PATH. */
export async function installed(command) {
  const { code } = await run('sh', ['-c', `command -v ${command}`], { allowFailure: true });
  return code === 0;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` (async; a truthy value ends the wait) every `everyMs` until `timeoutMs`. */
export async function waitUntil(probe, { timeoutMs, everyMs = 200, what }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}
