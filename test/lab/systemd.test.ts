import { describe, expect, it } from 'vitest';
import { createLab } from '../../src/lab/create.js';
import { testLayout } from './test-layout.js';
import { nspawnHierarchies } from '../../src/lab/systemd/cgroups.js';
import { MASKED_UNITS, nspawnArgv, supervisorArgv } from '../../src/lab/systemd/container.js';
import { mirrorFromSources, treeDir } from '../../src/lab/systemd/tree.js';

function systemdLayout() {
  return testLayout({
    init: 'systemd',
    containerTree: '/var/cache/lbprov-lab/bookworm-abc',
    cgroupHierarchies: ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified'],
  });
}

describe('the Debian mirror', () => {
  it("is the first URIs: line of a deb822 sources file, comments skipped", () => {
    const text = ['Types: deb', '# URIs: http://old.example/debian', 'URIs: http://mirror.example/debian', 'Suites: bookworm', '', 'URIs: http://mirror.example/debian-security'].join('\n');
    expect(mirrorFromSources(text)).toBe('http://mirror.example/debian');
  });

  it('is the URI of the first deb line of a one-line sources.list, with or without options', () => {
    expect(mirrorFromSources('# deb http://x/ bookworm main\ndeb http://one.example/debian bookworm main\n')).toBe('http://one.example/debian');
    expect(mirrorFromSources('deb [arch=amd64 signed-by=/k.gpg] https://two.example/debian bookworm main')).toBe('https://two.example/debian');
    expect(mirrorFromSources('deb-src http://src.example/debian bookworm main')).toBeUndefined();
  });
});

describe('the cached tree', () => {
  it('has one path per package list, under the cache', () => {
    expect(treeDir('/c')).toBe(treeDir('/c'));
    expect(treeDir('/c')).toMatch(/^\/c\/bookworm-[0-9a-f]{12}$/);
  });
});

describe('cgroup hierarchies', () => {
  it('are cgroup2 and the v1 name=systemd one, never the v1 controllers', () => {
    const mountinfo = [
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate',
    ].join('\n');
    expect(nspawnHierarchies(mountinfo)).toEqual(['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']);
  });
});

describe('a systemd gateway', () => {
  const state = systemdLayout();
  const gw = state.gateways[0]!;

  it('has its container laid out in its own dir, with a cgroup per hierarchy', () => {
    expect(state.init).toBe('systemd');
    expect(gw.container).toEqual({
      machine: 'lbt1-gw1',
      lower: '/var/cache/lbprov-lab/bookworm-abc',
      root: '/tmp/lab-test/gw1/root',
      upper: '/tmp/lab-test/gw1/upper',
      work: '/tmp/lab-test/gw1/work',
      cgroups: ['/sys/fs/cgroup/systemd/lbprov-lab/lbt1-gw1', '/sys/fs/cgroup/unified/lbprov-lab/lbt1-gw1'],
      consoleLog: '/tmp/lab-test/gw1/console.log',
    });
  });

  it('boots with no host systemd to register with, in its network namespace, with CAP_NET_ADMIN', () => {
    const argv = nspawnArgv(gw, gw.container!);
    expect(argv.slice(argv.indexOf('systemd-nspawn'))).toEqual([
      'systemd-nspawn', '--quiet', '--directory=/tmp/lab-test/gw1/root', '--machine=lbt1-gw1', '--register=no', '--keep-unit',
      '--network-namespace-path=/run/netns/lbt1-gw1', '--capability=CAP_NET_ADMIN',
      '--link-journal=no', '--resolv-conf=off', '--timezone=off', '--console=read-only', '--boot',
    ]);
    expect(argv.slice(0, 2)).toEqual(['env', 'SYSTEMD_NSPAWN_API_VFS_WRITABLE=network']);
  });

  it('is supervised from its cgroups, nspawn after the --', () => {
    const argv = supervisorArgv(gw, gw.container!);
    const separator = argv.indexOf('--');
    expect(argv.slice(3, separator)).toEqual(['sh', '/tmp/lab-test/gw1', ...gw.container!.cgroups]);
    expect(argv.slice(separator + 1)).toEqual(nspawnArgv(gw, gw.container!));
  });

  it('masks the gettys and the waits that a container has no use for', () => {
    expect(MASKED_UNITS).toEqual(expect.arrayContaining(['console-getty.service', 'systemd-networkd-wait-online.service', 'apt-daily.timer']));
  });

  it('takes static links only, refused before anything is made', async () => {
    await expect(createLab({ init: 'systemd', linkKinds: ['static', 'dhcp'], dir: '/nonexistent/lab' })).rejects.toThrow(/static links only; dhcp links need init none/);
  });
});
