/** The files a run is made from, named by their content: what a saved plan records and checks. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PlanSource } from '../model/plan.js';
import type { Playbook } from '../render/playbook.js';

export function fileSource(path: string): PlanSource {
  return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

/** The playbook file and every template it can render (its templates folder and one level below). */
export function playbookSource(playbook: Playbook): PlanSource {
  const hash = createHash('sha256').update(readFileSync(playbook.path));
  const files = (dir: string, prefix: string): string[] =>
    readdirSync(dir).sort().flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return prefix === '' ? files(path, `${name}/`) : [];
      return name.endsWith('.hbs') ? [`${prefix}${name}`] : [];
    });
  for (const name of files(playbook.templatesDir, '')) hash.update(`\0${name}\0`).update(readFileSync(join(playbook.templatesDir, name)));
  return { path: playbook.path, sha256: hash.digest('hex') };
}
