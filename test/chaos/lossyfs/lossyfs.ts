/**
 * Build and mount helper of lossyfs (lossyfs.c beside this file): a FUSE 3 passthrough filesystem
 * that keeps written data in memory until fsync and drops it on a simulated power loss.
 *
 *   const built = await ensureLossyFs();
 *   if ('unavailable' in built) skip(built.unavailable);
 *   const m = await LossyMount.mount(built.binary, backingDir, mountpoint);
 *   ...                       // run the store with its data dir under `mountpoint`
 *   await m.powerLoss();      // every unsynced write is gone (processes using it should be dead)
 *   await m.unmount();
 *
 * Semantics, bounds and simplifications are in lossyfs.c's header. For the harness: power loss
 * should be taken with every process using the mount already dead (SIGKILL them first), as a real
 * one would: a process that keeps a file open across it sees the file shrink under it, and the
 * kernel's idea of an O_APPEND file's end may be stale for that open file.
 *
 * Needs Linux, root and /dev/fuse. Builds with gcc, pkg-config and libfuse3-dev, installing them
 * with apt-get when they are missing. The binary is cached under os.tmpdir(), keyed by a hash of
 * the C source.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, readdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lossyfs.c');
/** Characters of a failing tool's output kept in an `unavailable` reason. */
const OUTPUT_TAIL_CHARS = 2_000;
/** Deadline of apt-get update / install (a cold install of the build tools takes a minute or two). */
const APT_DEADLINE_MS = 600_000;
/** Deadline of one gcc or pkg-config run. */
const BUILD_DEADLINE_MS = 120_000;
/** Deadline for the "mounted" line after spawning lossyfs. */
const MOUNT_DEADLINE_MS = 15_000;
/** Deadline for the "dropped" line after SIGUSR1. */
const POWER_LOSS_DEADLINE_MS = 10_000;
/** Deadline for lossyfs to exit after SIGTERM before it is SIGKILLed. */
const UNMOUNT_DEADLINE_MS = 10_000;

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a command to completion (never throws): exit code (null if it could not run) and output. */
function run(cmd: string, args: readonly string[], deadlineMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    let output = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    } catch (err) {
      resolve({ code: null, output: String(err) });
      return;
    }
    const keep = (d: Buffer): void => {
      output += d.toString();
      if (output.length > 4 * OUTPUT_TAIL_CHARS) output = output.slice(-2 * OUTPUT_TAIL_CHARS);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const timer = setTimeout(() => {
      output += `\n(${cmd} killed after ${deadlineMs} ms)`;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: output + String(err) });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const tail = (s: string): string => s.trim().slice(-OUTPUT_TAIL_CHARS);

async function exists(p: string, mode: number = fsConstants.F_OK): Promise<boolean> {
  try {
    await access(p, mode);
    return true;
  } catch {
    return false;
  }
}

/** Is `cmd` on PATH? */
async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && (await exists(path.join(dir, cmd), fsConstants.X_OK))) return true;
  }
  return false;
}

async function haveBuildTools(): Promise<boolean> {
  if (!(await onPath('gcc')) || !(await onPath('pkg-config'))) return false;
  return (await run('pkg-config', ['--exists', 'fuse3'], BUILD_DEADLINE_MS)).code === 0;
}

/** Installs the build tools with apt-get; null on success, else the reason. */
async function installBuildTools(): Promise<string | null> {
  if (!(await onPath('apt-get'))) return 'gcc, pkg-config or libfuse3-dev is missing and there is no apt-get to install them';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const pkgs = ['gcc', 'libc6-dev', 'pkg-config', 'libfuse3-dev', 'fuse3'];
  const install = (): Promise<RunResult> => run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], APT_DEADLINE_MS, env);
  // Try without an update first (lists may be fresh); update only if that fails.
  let r = await install();
  if (r.code !== 0) {
    const u = await run('apt-get', ['update'], APT_DEADLINE_MS, env);
    if (u.code !== 0) return `apt-get update failed (exit ${u.code}): ${tail(u.output)}`;
    r = await install();
  }
  if (r.code !== 0) return `apt-get install ${pkgs.join(' ')} failed (exit ${r.code}): ${tail(r.output)}`;
  if (!(await haveBuildTools())) return 'apt-get installed the build tools, but gcc or `pkg-config --exists fuse3` still fails';
  return null;
}

let building: Promise<{ binary: string } | { unavailable: string }> | null = null;

/**
 * The lossyfs binary, built (once per source version) and tried once (a container may have
 * /dev/fuse without the right to mount) when this machine can run it; otherwise why not.
 * Never throws.
 */
export function ensureLossyFs(): Promise<{ binary: string } | { unavailable: string }> {
  building ??= build()
    .then(async (built) => ('binary' in built ? ((await probeMount(built.binary)) ?? built) : built))
    .catch((err: unknown) => ({ unavailable: `lossyfs build failed: ${String(err)}` }));
  return building;
}

/** Mounts and unmounts an empty lossyfs once: null when that works, else why not. */
async function probeMount(binary: string): Promise<{ unavailable: string } | null> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flotilla-lossyfs-probe-'));
  try {
    const [backing, mountpoint] = [path.join(dir, 'backing'), path.join(dir, 'mnt')];
    await mkdir(backing);
    await mkdir(mountpoint);
    const mount = await LossyMount.mount(binary, backing, mountpoint);
    await mount.unmount();
    return null;
  } catch (err) {
    return { unavailable: `a trial FUSE mount failed: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

async function build(): Promise<{ binary: string } | { unavailable: string }> {
  if (process.platform !== 'linux') return { unavailable: `lossyfs needs Linux (this is ${process.platform})` };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { unavailable: 'lossyfs needs root (to mount FUSE and to install its build tools)' };
  if (!(await exists('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK))) return { unavailable: 'lossyfs needs /dev/fuse, which this machine lacks' };

  const source = await readFile(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'flotilla-lossyfs');
  const binary = path.join(dir, `lossyfs-${hash}`);
  if (await exists(binary, fsConstants.X_OK)) return { binary };

  if (!(await haveBuildTools())) {
    const why = await installBuildTools();
    if (why !== null) return { unavailable: why };
  }
  const flags = await run('pkg-config', ['--cflags', '--libs', 'fuse3'], BUILD_DEADLINE_MS);
  if (flags.code !== 0) return { unavailable: `pkg-config --cflags --libs fuse3 failed: ${tail(flags.output)}` };
  await mkdir(dir, { recursive: true });
  // Build to a private name, then rename: concurrent builders never see a half-written binary.
  const partial = `${binary}.${process.pid}.partial`;
  const cc = await run('gcc', ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', partial, SOURCE, ...flags.output.trim().split(/\s+/)], BUILD_DEADLINE_MS);
  if (cc.code !== 0) return { unavailable: `gcc failed to build lossyfs (exit ${cc.code}): ${tail(cc.output)}` };
  await rename(partial, binary);
  // Binaries of older sources are dead weight (a running one keeps its inode).
  for (const name of await readdir(dir)) {
    if (/^lossyfs-[0-9a-f]{16}$/.test(name) && path.join(dir, name) !== binary) await rm(path.join(dir, name), { force: true });
  }
  return { binary };
}

/** Lines of a child's stdout, and waiting for one that matches, with a deadline. */
class LineWatcher {
  private buffer = '';
  private readonly lines: string[] = [];
  private readonly waiters = new Set<() => void>();
  private ended = false;

  constructor(child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
      this.wake();
    });
    child.on('close', () => this.end());
  }

  /** The child is gone: waiters fail at once. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Consumes and returns the first line matching `re`; rejects on the deadline or the child's exit. */
  next(re: RegExp, what: string, deadlineMs: number, describe: () => string): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        for (let i = 0; i < this.lines.length; i++) {
          const m = this.lines[i]!.match(re);
          if (m !== null) {
            this.lines.splice(0, i + 1);
            done();
            resolve(m);
            return;
          }
        }
        if (this.ended) {
          done();
          reject(new Error(`lossyfs exited before ${what}; ${describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`lossyfs: no ${what} within ${deadlineMs} ms; ${describe()}`));
      }, deadlineMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

/** Is `mountpoint` a mount point now (per /proc/self/mountinfo)? */
async function isMounted(mountpoint: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const want = path.resolve(mountpoint);
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info.split('\n').some((line) => {
    const f = line.split(' ');
    return f[4] !== undefined && unescape(f[4]) === want;
  });
}

/** One running lossyfs mount. */
export class LossyMount {
  private stderr = '';
  private exited: Promise<void>;
  private exitInfo: string | null = null;
  private unmounting: Promise<void> | null = null;
  private readonly watcher: LineWatcher;

  private constructor(
    private readonly child: ChildProcess,
    readonly backingDir: string,
    readonly mountpoint: string,
  ) {
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-OUTPUT_TAIL_CHARS);
    });
    // 'close' (exit and stdio drained), so a failure report has all of stderr.
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exitInfo = `exit code ${code}, signal ${signal}`;
        resolve();
      });
      // A binary that cannot be spawned emits 'error' and no 'close'.
      child.on('error', (err) => {
        if (child.pid !== undefined) return;
        this.exitInfo = `could not start: ${String(err)}`;
        this.watcher.end();
        resolve();
      });
    });
    // After the listeners above, so the watcher sees exitInfo when the child is gone.
    this.watcher = new LineWatcher(child);
  }

  /** The lossyfs process id (undefined if it could not be spawned). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  private describe(): string {
    return `${this.exitInfo ?? 'still running'}; stderr: ${tail(this.stderr) || '(empty)'}`;
  }

  /** Spawns lossyfs over `backingDir` at `mountpoint` (both existing) and waits until it is mounted. */
  static async mount(binary: string, backingDir: string, mountpoint: string, options: { maxBufferedBytes?: number } = {}): Promise<LossyMount> {
    const args = [backingDir, mountpoint];
    if (options.maxBufferedBytes !== undefined) args.push('-o', `max_buffered=${options.maxBufferedBytes}`);
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const m = new LossyMount(child, backingDir, mountpoint);
    try {
      await m.watcher.next(/^lossyfs: mounted /, 'mounted line', MOUNT_DEADLINE_MS, () => m.describe());
    } catch (err) {
      await m.unmount().catch(() => {});
      throw err;
    }
    return m;
  }

  /** Simulates a power loss: every unsynced write of every file is dropped. */
  async powerLoss(): Promise<{ bytes: number; files: number }> {
    if (this.exitInfo !== null || this.unmounting !== null) throw new Error(`lossyfs is not running (${this.describe()})`);
    const line = this.watcher.next(/^lossyfs: dropped (\d+) unsynced bytes of (\d+) files$/, 'dropped line', POWER_LOSS_DEADLINE_MS, () => this.describe());
    this.child.kill('SIGUSR1');
    const m = await line;
    return { bytes: Number(m[1]), files: Number(m[2]) };
  }

  /** Unmounts (SIGTERM; SIGKILL and a lazy unmount as fallbacks) and waits for the exit. Idempotent. */
  unmount(): Promise<void> {
    this.unmounting ??= this.stop();
    return this.unmounting;
  }

  private async stop(): Promise<void> {
    if (this.exitInfo === null) {
      this.child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), UNMOUNT_DEADLINE_MS);
      });
      const how = await Promise.race([this.exited.then(() => 'exited' as const), late]);
      clearTimeout(timer);
      if (how === 'late') {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    if (await isMounted(this.mountpoint)) {
      // The process is gone but the mount stayed (it was killed): detach it.
      const f = await run('fusermount3', ['-u', '-z', this.mountpoint], BUILD_DEADLINE_MS);
      if (f.code !== 0 && (await isMounted(this.mountpoint))) {
        const u = await run('umount', ['-l', this.mountpoint], BUILD_DEADLINE_MS);
        if (u.code !== 0 && (await isMounted(this.mountpoint))) throw new Error(`cannot unmount ${this.mountpoint}: ${tail(f.output)} / ${tail(u.output)}`);
      }
    }
  }
}
