import type { Worker } from 'node:worker_threads';

/** What the pool sends a worker, and what the worker answers (with the same id). */
export interface ThreadJob<Job> {
  id: number;
  job: Job;
}
export type ThreadReply<Result> = { id: number; result: Result } | { id: number; error: string };

export interface ThreadPoolOptions {
  /** Starts one worker: on the first job that finds no idle one, and again after one failed. */
  start: () => Worker;
  /** Workers at most; jobs beyond that wait, first come first served. */
  size: number;
  /** A job unanswered after this fails, and its worker is stopped: no job waits forever. */
  timeoutMs: number;
  /**
   * A worker idle this long is stopped, and its memory (its own heap, the fonts it parsed) given
   * back; the next job starts a new one. Omitted: workers are kept.
   */
  idleMs?: number;
}

interface Task<Job, Result> {
  job: Job;
  resolve: (result: Result) => void;
  reject: (error: Error) => void;
}

interface Thread<Job, Result> {
  worker: Worker;
  /** The job it is working on, one at a time, so a crash costs that job only. */
  busy: (Task<Job, Result> & { id: number; timer: NodeJS.Timeout }) | null;
  /** Stops it once it has been idle for `idleMs`. */
  idle: NodeJS.Timeout | null;
}

/**
 * Worker threads that take jobs one at a time, started when first needed and kept (until idle for
 * `idleMs`, when set). A worker holds
 * the process open only while it has a job (an idle one must not keep a finished process alive; a
 * busy one must, or its caller's await would never end). A worker that crashes, exits or overruns
 * its time fails its job and is dropped; the next job starts a new one.
 */
export class ThreadPool<Job, Result> {
  private readonly threads = new Set<Thread<Job, Result>>();
  private readonly queue: Array<Task<Job, Result>> = [];
  private nextId = 0;

  constructor(private readonly options: ThreadPoolOptions) {}

  run(job: Job): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let thread = [...this.threads].find((t) => t.busy === null);
      if (!thread && this.threads.size < this.options.size) {
        try {
          thread = this.started();
        } catch (error) {
          this.queue.shift()?.reject(asError(error));
          continue;
        }
      }
      if (!thread) return;
      this.assign(thread, this.queue.shift()!);
    }
  }

  private assign(thread: Thread<Job, Result>, task: Task<Job, Result>): void {
    const id = this.nextId++;
    if (thread.idle !== null) clearTimeout(thread.idle);
    thread.idle = null;
    const timer = setTimeout(() => this.fail(thread, new Error(`a worker thread gave no answer in ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    thread.busy = { ...task, id, timer };
    thread.worker.ref();
    try {
      thread.worker.postMessage({ id, job: task.job } satisfies ThreadJob<Job>);
    } catch (error) {
      // The job could not be sent (not cloneable): the worker is fine and takes the next one.
      this.finish(thread)?.reject(asError(error));
    }
  }

  private started(): Thread<Job, Result> {
    const worker = this.options.start();
    const thread: Thread<Job, Result> = { worker, busy: null, idle: null };
    worker.on('message', (reply: ThreadReply<Result>) => {
      if (thread.busy?.id !== reply.id) return; // the answer to a job that already timed out
      const task = this.finish(thread)!;
      if ('error' in reply) task.reject(new Error(reply.error));
      else task.resolve(reply.result);
      this.dispatch();
    });
    worker.on('error', (error) => this.fail(thread, error));
    worker.on('exit', (code) => this.fail(thread, new Error(`a worker thread stopped (exit code ${code})`)));
    // Idle until a job refs it (after the listeners: adding a 'message' listener refs it again).
    worker.unref();
    this.threads.add(thread);
    return thread;
  }

  /** The thread's job, which it no longer has; the thread goes idle. */
  private finish(thread: Thread<Job, Result>): Task<Job, Result> | null {
    const task = thread.busy;
    if (task === null) return null;
    clearTimeout(task.timer);
    thread.busy = null;
    thread.worker.unref();
    const { idleMs } = this.options;
    // unref'd: a pending retirement must not keep a finished process alive either.
    if (idleMs !== undefined) thread.idle = setTimeout(() => this.retire(thread), idleMs).unref();
    return task;
  }

  /** Stops an idle worker (its 'exit' then finds it gone from the pool and fails nothing). */
  private retire(thread: Thread<Job, Result>): void {
    if (thread.busy !== null || !this.threads.delete(thread)) return;
    void thread.worker.terminate();
  }

  /** Drops a thread that crashed, exited or overran: its job fails with `error`. */
  private fail(thread: Thread<Job, Result>, error: Error): void {
    if (!this.threads.delete(thread)) return; // already dropped ('error' comes before 'exit')
    this.finish(thread)?.reject(error);
    if (thread.idle !== null) clearTimeout(thread.idle);
    void thread.worker.terminate();
    this.dispatch();
  }
}

const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
