// Running the built image with podman, as `docker run` would, on machines whose sandbox refuses
// some of what a container runtime does by default.
import { readFileSync } from 'node:fs';
import { run, waitUntil } from './processes.mjs';

/**
 * Finds the first way of starting a container that works here, trying the plain one first:
 *  - podman's default rlimits (nofile 1048576, a high nproc) are above this sandbox's hard limits,
 *    and a runtime may not raise them ("setrlimit RLIMIT_NOFILE: Operation not permitted"), so
 *    the limits are set to what this process has;
 *  - crun refuses cgroups v1 with a v2 hierarchy mounted beside it ("cgroups in hybrid mode not
 *    supported"), which runc accepts.
 * Every container shares the host's network (`--network host`): the fake upstream and PostgreSQL
 * are on 127.0.0.1, and no traffic leaves the loopback.
 */
export async function findRunRoute(image) {
  const hardNofile = (await run('sh', ['-c', 'ulimit -Hn'])).stdout.trim();
  const limits = ['--ulimit', `nofile=${hardNofile}:${hardNofile}`, '--ulimit', 'nproc=4096:4096'];
  const candidates = [
    { name: 'podman run (defaults)', global: [], args: [] },
    { name: `podman run --ulimit nofile=${hardNofile} --ulimit nproc=4096 (crun)`, global: [], args: limits },
    { name: `podman --runtime runc run --ulimit nofile=${hardNofile} --ulimit nproc=4096`, global: ['--runtime', 'runc'], args: limits },
    { name: 'podman --runtime runc run --cgroups=disabled with those limits', global: ['--runtime', 'runc'], args: [...limits, '--cgroups=disabled'] },
  ];
  const refusals = [];
  for (const route of candidates) {
    const probe = await run('podman', [...route.global, 'run', '--rm', '--network', 'host', ...route.args, image, 'node', '-e', 'process.exit(0)'], { allowFailure: true });
    if (probe.code === 0) return { ...route, refusals };
    refusals.push(`${route.name}: ${probe.stderr.trim().split('\n').pop()}`);
  }
  throw new Error(`no way of running a container worked here:\n  ${refusals.join('\n  ')}`);
}

/** One container of the image, with its name, its volume and the port it serves on. */
export class Container {
  constructor({ route, image, name, volume, port, env = {}, mounts = [] }) {
    Object.assign(this, { route, image, name, volume, port, env, mounts });
    this.url = `http://127.0.0.1:${port}`;
  }

  podman(args, options) {
    return run('podman', [...this.route.global, ...args], options);
  }

  /** `podman run -d` and waits for the banner; rejects with the output if it exits first. */
  async start() {
    const env = Object.entries({ ...this.env, PORT: String(this.port) }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const mounts = [`${this.volume}:/data`, ...this.mounts].flatMap((m) => ['-v', m]);
    await this.podman(['run', '-d', '--name', this.name, '--network', 'host', ...this.route.args, ...mounts, ...env, this.image]);
    return this.waitForBanner();
  }

  async waitForBanner() {
    return waitUntil(
      async () => {
        const output = await this.logs();
        if (/listening on http/.test(output)) return output;
        if ((await this.state()).Status === 'exited') throw new Error(`the container exited before listening:\n${output}`);
        return null;
      },
      { timeoutMs: 60_000, what: `${this.name}'s banner` },
    );
  }

  async logs() {
    const { stdout, stderr } = await this.podman(['logs', this.name], { allowFailure: true });
    return stdout + stderr;
  }

  async state() {
    const { stdout } = await this.podman(['inspect', this.name, '--format', '{{json .State}}']);
    return JSON.parse(stdout);
  }

  /** The uid, gid and command line of the container's PID 1, read on the host from /proc. */
  async mainProcess() {
    const { Pid } = await this.state();
    const status = readFileSync(`/proc/${Pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    const gid = Number(/^Gid:\s+(\d+)/m.exec(status)?.[1]);
    const command = readFileSync(`/proc/${Pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid: Pid, uid, gid, command };
  }

  /** `podman stop` (SIGTERM, then SIGKILL after `graceSeconds`); resolves with how long it took and the exit code. */
  async stop(graceSeconds = 30) {
    const started = Date.now();
    await this.podman(['stop', '-t', String(graceSeconds), this.name]);
    const { ExitCode } = await this.state();
    return { seconds: (Date.now() - started) / 1000, exitCode: ExitCode };
  }

  /** The image's HEALTHCHECK, run inside the container by podman. */
  healthcheck() {
    return this.podman(['healthcheck', 'run', this.name], { allowFailure: true });
  }

  remove() {
    return this.podman(['rm', '-f', '-t', '0', this.name], { allowFailure: true });
  }
}
