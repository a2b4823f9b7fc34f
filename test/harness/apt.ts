/**
 * Installs missing Debian packages for the server starters. Requests made together (the
 * global setup starts all servers at once) are merged into one `apt-get install`, and
 * installs never overlap, since dpkg takes a lock.
 */
import { performance } from 'node:perf_hooks';
import { isRoot, run } from './process.js';

const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
// Another apt/dpkg (a second test run, unattended-upgrades) may hold the lock: wait for it.
const lockWait = ['-o', 'DPkg::Lock::Timeout=300'];

let updated: Promise<string | undefined> | undefined;
let pending = new Set<string>();
let batch: Promise<void> | undefined;
let queue: Promise<void> = Promise.resolve();

/** Timings of the apt-get calls this process made, for the harness log. */
export const aptTimings: { step: string; ms: number }[] = [];

async function timed(step: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  aptTimings.push({ step, ms: Math.round(performance.now() - t0) });
}

// `apt-get update` at most once per process, and only when something must be installed.
// Its failure (offline mirror) is remembered, not thrown: the package lists on disk may
// still do, and if they do not, the install error carries this one too.
function updateOnce(): Promise<string | undefined> {
  updated ??= timed('apt-get update', () =>
    run({ cmd: 'apt-get', args: [...lockWait, 'update'], env: aptEnv, timeoutMs: 300_000 }),
  ).then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  return updated;
}

async function install(packages: readonly string[]): Promise<void> {
  if (!isRoot()) {
    throw new Error(
      `the test servers need the Debian package(s) ${packages.join(' ')}, and installing them needs root: ` +
        `run \`sudo apt-get install -y --no-install-recommends ${packages.join(' ')}\` or run the tests as root`,
    );
  }
  const updateError = await updateOnce();
  const args = [...lockWait, 'install', '-y', '--no-install-recommends', ...packages];
  try {
    await timed(`apt-get install ${packages.join(' ')}`, () =>
      run({ cmd: 'apt-get', args, env: aptEnv, timeoutMs: 900_000 }),
    );
  } catch (err) {
    if (updateError === undefined) throw err;
    const note = `apt-get update had failed before: ${updateError}`;
    throw new Error(`${(err as Error).message}\n(${note})`, { cause: err });
  }
}

/**
 * Installs `packages` with apt-get. Calls in the same tick share one install; later calls
 * queue behind the running one. Call it only when the binaries are missing.
 */
export function aptInstall(packages: readonly string[]): Promise<void> {
  for (const p of packages) pending.add(p);
  if (!batch) {
    const next = queue
      .then(() => new Promise((resolve) => setImmediate(resolve)))
      .then(() => {
        const list = [...pending];
        pending = new Set();
        batch = undefined;
        return install(list);
      });
    batch = next;
    queue = next.catch(() => undefined);
  }
  return batch;
}
