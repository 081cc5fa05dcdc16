/**
 * lbprov's files travel by hash: on a converged gateway the facts carry the hash of every file
 * whose content the controller already rendered (the monitor's script among them) and only the
 * rest whole. A file edited by hand has a hash nobody knows, so it is sent whole and the plan
 * shows the real edit; a changed mode shows too. Both are repaired by one up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFactsScript } from '../../src/facts/script.js';
import { parseFacts } from '../../src/facts/parse.js';
import { readTar } from '../../src/facts/tar.js';
import { factsRequestFor } from '../../src/render/desired.js';
import { loadPlaybook, PACKAGE_ROOT } from '../../src/render/playbook.js';
import { loadTemplateSet } from '../../src/render/templates.js';
import { loadInventory } from '../../src/inventory/index.js';
import type { FileResource } from '../../src/model/resources.js';
import { skipLab, startLab, type LabRun } from './harness.js';

describe.skipIf(skipLab)('files in the facts: hashes for what the controller knows, content for the rest', () => {
  let t: LabRun;
  const MONITOR = '/etc/lbprov/monitor.sh';
  const CONF = '/etc/lbprov/monitor.conf';

  /** The facts script as `plan` runs it: the raw files section and the parsed files. */
  const readFiles = async () => {
    const gw = loadInventory(t.lab.inventoryPath).gateways[0]!;
    const playbook = loadPlaybook(`${PACKAGE_ROOT}/playbooks/balancer.yml`);
    const request = factsRequestFor(gw, playbook, loadTemplateSet(playbook.templatesDir));
    const { script, marker } = buildFactsScript(request);
    const out = (await t.lab.execOnGateway(0, ['sh', '-s'], { input: script })).stdout;
    const section = new RegExp(`^@@${marker} begin files\\n([\\s\\S]*?)\\n@@${marker} end files`, 'm').exec(out)![1]!;
    const lines = section.split('\n');
    const tarAt = lines.indexOf('@tar');
    const sentWhole = tarAt === -1 ? [] : readTar(Buffer.from(lines[tarAt + 1]!, 'base64')).map((e) => e.path);
    const files = parseFacts('gw1', out, marker, request).owned.filter((r): r is FileResource => r.kind === 'file');
    return { sentWhole, files, bytes: section.length, hashed: lines.filter((l) => l.startsWith('@h ')).length };
  };

  beforeAll(async () => {
    t = await startLab({ gateways: 1, weights: [3, 1] });
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('a converged gateway sends its pre-rendered files as hashes, and they parse to the files on disk', async () => {
    const { sentWhole, files, bytes, hashed } = await readFiles();
    expect(sentWhole).not.toContain(MONITOR);
    expect(sentWhole).not.toContain(CONF);
    expect(hashed).toBeGreaterThanOrEqual(files.length);
    const monitor = files.find((f) => f.path === MONITOR)!;
    expect(monitor.mode).toBe('0755');
    expect(monitor.content).toBe(await t.gw(['cat', MONITOR]));
    // The monitor's script alone is larger than the whole section.
    expect(bytes).toBeLessThan(monitor.content.length);
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(0);
  });

  it('a hand edit travels whole and shows as itself; a changed mode shows; one up repairs both', async () => {
    await t.gw(['sh', '-c', `echo '# edited by hand' >> ${MONITOR}; chmod 0600 ${CONF}`]);
    const { sentWhole, files } = await readFiles();
    expect(sentWhole).toContain(MONITOR);
    expect(files.find((f) => f.path === MONITOR)!.content).toMatch(/# edited by hand\n$/);
    expect(files.find((f) => f.path === CONF)!.mode).toBe('0600');
    const plan = await t.cli(['plan', '-i', t.lab.inventoryPath]);
    expect(plan.code, plan.stdout).toBe(2);
    expect(plan.stdout).toContain(`file:${MONITOR}`);
    expect(plan.stdout).toContain('# edited by hand');
    expect(plan.stdout).toContain(`file:${CONF}`);
    const up = await t.cli(['up', '-i', t.lab.inventoryPath, '--yes']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    expect(await t.gw(['stat', '-c', '%a', CONF])).toBe('644\n');
    expect(await t.gw(['tail', '-n', '1', MONITOR])).not.toContain('edited by hand');
    expect((await t.cli(['plan', '-i', t.lab.inventoryPath])).code).toBe(0);
  });
});
