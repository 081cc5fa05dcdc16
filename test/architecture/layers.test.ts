/**
 * The import rules of src/ (.dependency-cruiser.cjs): the tree follows them, and the rules do
 * catch what they forbid, shown on a small tree with one wrong import of each kind.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cruise } from 'dependency-cruiser';

const ROOT = resolve(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
const config = require(join(ROOT, '.dependency-cruiser.cjs')) as { forbidden: object[]; options: Record<string, unknown>; LAYERS: string[][] };

async function violations(baseDir: string): Promise<{ rule: string; from: string; to: string }[]> {
  const { output } = await cruise(['src'], { ...config.options, tsConfig: { fileName: join(baseDir, 'tsconfig.json') }, ruleSet: { forbidden: config.forbidden }, baseDir, validate: true } as never);
  if (typeof output === 'string') throw new Error(output);
  return output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to }));
}

const work = mkdtempSync(join(tmpdir(), 'lbprov-layers-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(work, 'tree-'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src/**/*.ts'] }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('the import rules of src/', () => {
  it('hold for the tree as it is', async () => {
    expect(await violations(ROOT)).toEqual([]);
  });

  it('name every folder of src/ in exactly one layer', () => {
    const named = config.LAYERS.flat();
    expect(new Set(named).size).toBe(named.length);
    expect(named).toEqual(expect.arrayContaining(['model', 'remote', 'routing', 'firewall', 'facts', 'render', 'diff', 'checks', 'apply', 'runner', 'report', 'status', 'cli']));
  });

  it('fail an import that goes up a layer, one beside it, a circle, and one backend reaching into another', async () => {
    const dir = tree({
      'src/model/a.ts': "import { b } from '../cli/b.js';\nexport const a = b;\n",
      'src/cli/b.ts': 'export const b = 1;\n',
      'src/render/c.ts': "import { d } from '../diff/d.js';\nexport const c = d;\n",
      'src/diff/d.ts': 'export const d = 1;\n',
      'src/runner/x.ts': "import { y } from './y.js';\nexport const x = () => y;\n",
      'src/runner/y.ts': "import { x } from './x.js';\nexport const y = () => x;\n",
      'src/firewall/iptables/i.ts': "import { n } from '../nftables/n.js';\nexport const i = n;\n",
      'src/firewall/nftables/n.ts': 'export const n = 1;\n',
      'src/firewall/nftables/r.ts': "import { all } from '../index.js';\nexport const r = all;\n",
      'src/firewall/index.ts': 'export const all = [];\n',
    });
    const found = await violations(dir);
    const pairs = found.map((v) => `${v.rule} ${v.from} -> ${v.to}`);
    expect(pairs).toEqual(
      expect.arrayContaining([
        'layer-model src/model/a.ts -> src/cli/b.ts',
        'layer-render src/render/c.ts -> src/diff/d.ts',
        'backends-apart src/firewall/iptables/i.ts -> src/firewall/nftables/n.ts',
        'backends-below-registry src/firewall/nftables/r.ts -> src/firewall/index.ts',
      ]),
    );
    expect(found.some((v) => v.rule === 'no-circular' && v.from.startsWith('src/runner/'))).toBe(true);
  });
});
