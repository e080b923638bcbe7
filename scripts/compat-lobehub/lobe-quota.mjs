// lobe-quota as users run it (`npm start`'s dist/server/main.js in its own process) and a small
// client for its admin API.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Starts dist/server/main.js on a free port with its own data directory and config file; resolves
 * once its banner says where it listens, or with `{failed}` and its output when it exits first
 * (for instance because the config names an option this build does not have).
 */
export function startLobeQuota({ repoRoot, dir, config, env }) {
  mkdirSync(dir, { recursive: true });
  const configFile = path.join(dir, 'lobe-quota.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'server', 'main.js')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: path.join(dir, 'data'), LOBE_QUOTA_CONFIG: configFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ failed: `no banner within 30 s:\n${output}`, stop }), 30_000);
    const onData = () => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve({ url: match[1], stop, output: () => output });
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ failed: `exited with code ${code}:\n${output.trim()}`, stop });
    });
  });
}

/** The admin API with the admin token; throws on any non-2xx answer. */
export const adminClient = (baseUrl, token) => async (method, route, body) => {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status} ${text}`);
  return text === '' ? null : JSON.parse(text);
};
