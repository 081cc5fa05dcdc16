/** lbprov command line: parses arguments and hands each command to its module. */
import { Command, Option } from 'commander';
import type { PlanOptions } from './plan.js';
import type { UpOptions } from './up.js';
import type { LabDownOptions, LabRebootOptions, LabTrafficOptions, LabUpOptions } from './lab.js';
import { planCommand } from './plan.js';
import { upCommand } from './up.js';
import { statusCommand, type StatusOptions } from './status.js';
import { checkCommand, type CheckOptions } from './check.js';
import { downCommand, type DownOptions } from './down.js';
import { reportFatal } from './output.js';
import { LBPROV_VERSION } from './version.js';
import { defaultForks } from '../runner/forks.js';

const program = new Command()
  .name('lbprov')
  .description('Weighted multi-link load balancing with failover on Linux gateways, over SSH.')
  .version(LBPROV_VERSION)
  .showHelpAfterError();

const INVENTORY_HELP = 'inventory: NAME reads inventories/NAME.yml, or a path';

/** `inventory: 'optional'` for `up`, whose --plan names its inventory itself. */
const common = (cmd: Command, inventory: 'required' | 'optional' = 'required') =>
  (inventory === 'required' ? cmd.requiredOption('-i, --inventory <name|path>', INVENTORY_HELP) : cmd.option('-i, --inventory <name|path>', `${INVENTORY_HELP} (with --plan: the plan's own)`))
    .option('-p, --playbook <path>', 'playbook (default playbooks/balancer.yml)')
    .option('-l, --limit <pattern>', "gateways to act on: names, groups, globs, '!' exclusions (e.g. 'paris,lyon:!gw-lyon-3')")
    .option('-f, --forks <n|auto>', `gateways handled at once (auto: ${defaultForks()} on this machine, 32 per core)`, 'auto')
    .option('--host-timeout <seconds>', 'give up on a gateway whose connection lasts longer than this', '900')
    .option('--accept-new', 'record unknown host keys in known_hosts (like StrictHostKeyChecking=accept-new)');

common(program.command('plan').description('show what up would change (exit 0: nothing, 2: changes, 1: error)'))
  .option('--json', 'print the plan as JSON')
  .option('--out <file>', 'also save the plan as JSON for `up --plan`')
  .action(async (opts: PlanOptions) => {
    process.exitCode = await planCommand(opts);
  });

common(program.command('up').description('apply the plan: only what differs'), 'optional')
  .option('-y, --yes', 'do not ask for confirmation')
  .option('--json', 'print the result as JSON')
  .option('--plan <file>', 'apply exactly this saved plan (from plan --out); refused where the gateway changed since')
  .option('--confirm-timeout <seconds>', 'revert on the gateway unless lbprov gets back in and confirms within this time', '60')
  .option('--no-confirm', 'apply without the confirm-or-revert step')
  .option('--lock-timeout <seconds>', "wait this long for another run's lock on a gateway", '30')
  .option('--serial <sizes>', 'roll out in waves: numbers or percentages of the selected gateways, the last repeats (e.g. 1,10%,100%)')
  .option('--max-fail <n|pct>', 'stop before the next wave when more than this many (or this share) of a wave failed (e.g. 5% or 2)')
  .option('--pause-between <seconds>', 'wait this long between waves')
  .action(async (opts: UpOptions) => {
    process.exitCode = await upCommand(opts);
  });

common(program.command('status').description('link health as each gateway monitor sees it (exit 1 when a monitor is down)'))
  .option('--json', 'print the status as JSON')
  .action(async (opts: StatusOptions) => {
    process.exitCode = await statusCommand(opts);
  });

common(program.command('check').description('what each gateway has and lacks for the balancer (exit 1 when something is missing)'))
  .option('--json', 'print the checks as JSON')
  .action(async (opts: CheckOptions) => {
    process.exitCode = await checkCommand(opts);
  });

common(program.command('down').description('remove everything lbprov put on the gateways, restore their kernel settings'))
  .option('--check', 'only show what would be removed (exit 0: nothing, 2: something)')
  .option('-y, --yes', 'do not ask for confirmation')
  .option('--json', 'print the result as JSON')
  .option('--lock-timeout <seconds>', "wait this long for another run's lock on a gateway", '30')
  .action(async (opts: DownOptions) => {
    process.exitCode = await downCommand(opts);
  });

// The lab's modules load only for lab commands: every other run starts faster without them.
const labCommands = () => import('./lab.js');
const lab = program.command('lab').description('a local lab of network namespaces (root)');
lab
  .command('up')
  .description('build the lab and write inventories/lab.yml')
  .addOption(new Option('--gateways <n>', 'number of gateways').default('1'))
  .addOption(new Option('--links <n>', 'links per gateway').default('2'))
  .option('--weights <list>', 'link weights, e.g. 3,1 or 5,2,1')
  .option('--firewall <backend>', "the inventory's defaults.firewall: auto, iptables or nftables (default: not written, so auto)")
  .option('--link-kinds <list>', 'kind of each link: static, dhcp or p2p, e.g. static,dhcp (default: all static)')
  .option('--p2p-down', 'p2p links start with no session (no ppp<k> until connected)')
  .option('--lan-sources <n>', "source addresses of each gateway's LAN client, 1..60 (extra ones from a second LAN subnet)")
  .option('--init <kind>', 'what runs on each gateway: none (its sshd only) or systemd (a container booting Debian 12; static links only)', 'none')
  .option('--dir <path>', 'lab folder', '.lab')
  .option('--inventory <path>', 'inventory to write', 'inventories/lab.yml')
  .action(async (opts: LabUpOptions) => {
    process.exitCode = await (await labCommands()).labUpCommand(opts);
  });
lab
  .command('traffic')
  .description("open new TCP connections from a lab gateway's LAN client and count them per link")
  .option('--dir <path>', 'lab folder', '.lab')
  .option('--gateway <name>', 'lab gateway', 'gw1')
  .option('-n, --connections <n>', 'connections to open', '400')
  .action(async (opts: LabTrafficOptions) => {
    process.exitCode = await (await labCommands()).labTrafficCommand(opts);
  });
lab
  .command('reboot')
  .description('reboot systemd gateways: their network namespaces are made again as at lab creation')
  .option('--dir <path>', 'lab folder', '.lab')
  .option('--gateway <name>', 'only this gateway (default: every one, one after another)')
  .option('--hard', 'kill the container like a power cut instead of a clean shutdown')
  .action(async (opts: LabRebootOptions) => {
    process.exitCode = await (await labCommands()).labRebootCommand(opts);
  });
lab
  .command('down')
  .description('remove everything the lab created')
  .option('--dir <path>', 'lab folder', '.lab')
  .action(async (opts: LabDownOptions) => {
    process.exitCode = await (await labCommands()).labDownCommand(opts);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.exitCode = reportFatal(e);
});
