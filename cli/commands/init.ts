import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../../engine/errors.js';
import { packageRoot } from '../../engine/paths.js';
import { loadProvider } from '../../providers/registry.js';
import { type IO, print } from '../io.js';

/** `backflow init DIR`: a starter config (the quickstart: SQLite files, no server). */
export async function initCommand(io: IO, opts: { dir: string }): Promise<number> {
  const target = resolve(opts.dir);
  await mkdir(target, { recursive: true });
  const existing = (await readdir(target)).filter((f) => /\.(ya?ml|hcl)$/.test(f));
  if (existing.length)
    throw new UserError(`${target} already holds config files (${existing.join(', ')})`, {
      hint: 'choose an empty directory; init never overwrites',
    });
  const from = join(packageRoot, 'examples', 'quickstart');
  for (const f of await readdir(from)) {
    if (f === '.backflow' || /\.db(-wal|-shm)?$/.test(f) || f === 'out') continue;
    await cp(join(from, f), join(target, f), { recursive: true });
  }
  await seedDatabases(target);
  print(
    io,
    `Created a starter configuration in ${target}.\n\nNext:\n  cd ${opts.dir}\n  backflow plan\n  backflow apply\n  backflow sync users_to_crm`,
  );
  return 0;
}

/** Creates `NAME.db` from each `NAME.seed.sql` through the SQLite provider (the quickstart's warehouse and CRM). */
export async function seedDatabases(dir: string): Promise<string[]> {
  const created: string[] = [];
  const sqlite = await loadProvider('sqlite');
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.seed.sql')).sort()) {
    const db = f.replace(/\.seed\.sql$/, '.db');
    await writeFile(join(dir, db), '', { flag: 'a' }); // an empty file is an empty SQLite database
    const session = await sqlite.open({
      settings: { type: 'sqlite', path: db },
      configDir: dir,
      address: `seed ${f}`,
    });
    try {
      await session.sql!.execute({ sql: await readFile(join(dir, f), 'utf8') });
    } finally {
      await session.close();
    }
    created.push(db);
  }
  return created;
}
