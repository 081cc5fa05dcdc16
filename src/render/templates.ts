/** An isolated, strict Handlebars: no HTML escaping, no unknown helpers, missing variables are errors. */
import Handlebars from 'handlebars';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';

export interface TemplateSet {
  dir: string;
  render(name: string, view: object): string;
}

const PARTIAL_SUFFIX = '.partial.hbs';

export function loadTemplateSet(dir: string): TemplateSet {
  const hbs = Handlebars.create();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw new InputError(dir, 'templates', `cannot read the templates folder: ${(e as Error).message}`);
  }
  // Partials of a backend's folder are named after it: {{> nftables/balance}}.
  const subfolders = entries.filter((f) => /^[A-Za-z0-9_-]+$/.test(f) && statSync(join(dir, f)).isDirectory());
  for (const file of [...entries, ...subfolders.flatMap((sub) => readdirSync(join(dir, sub)).map((f) => `${sub}/${f}`))]) {
    if (file.endsWith(PARTIAL_SUFFIX)) hbs.registerPartial(file.slice(0, -PARTIAL_SUFFIX.length), readFileSync(join(dir, file), 'utf8'));
  }
  const compiled = new Map<string, HandlebarsTemplateDelegate>();
  return {
    dir,
    render(name, view) {
      const path = join(dir, name);
      let template = compiled.get(name);
      try {
        if (!template) {
          template = hbs.compile(readFileSync(path, 'utf8'), { strict: true, noEscape: true, knownHelpersOnly: true });
          compiled.set(name, template);
        }
        return template(view);
      } catch (e) {
        throw templateError(path, e as Error);
      }
    },
  };
}

/** Handlebars says `"foo" not defined in [object Object] - 3:7`; turn that into file:line and key. */
function templateError(path: string, e: Error): InputError {
  const missing = /"([^"]+)" not defined in .* - (\d+):(\d+)/.exec(e.message);
  if (missing) return new InputError(`${path}:${missing[2]}`, missing[1]!, 'the template uses a variable the view model does not have');
  const parse = /Parse error on line (\d+)/.exec(e.message);
  if (parse) return new InputError(`${path}:${parse[1]}`, 'template', e.message.split('\n')[0]!);
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new InputError(path, 'template', 'template file not found');
  return new InputError(path, 'template', e.message.split('\n')[0]!);
}
