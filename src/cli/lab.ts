import { resolve } from 'node:path';
import { labDown, labUp } from '../lab/index.js';
import { InputError } from '../errors.js';
import { EXIT_OK } from './output.js';

export interface LabUpOptions {
  gateways: string;
  links: string;
  weights?: string;
  dir: string;
  inventory: string;
}

export interface LabDownOptions {
  dir: string;
}

function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InputError('command line', flag, `expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export async function labUpCommand(opts: LabUpOptions): Promise<number> {
  const weights = opts.weights?.split(',').map((w) => positiveInteger(w.trim(), '--weights'));
  const started = performance.now();
  const lab = await labUp({
    gateways: positiveInteger(opts.gateways, '--gateways'),
    links: weights?.length ?? positiveInteger(opts.links, '--links'),
    ...(weights ? { weights } : {}),
    dir: opts.dir,
    inventoryPath: opts.inventory,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`lab up: ${lab.gateways.length} gateway(s) in ${seconds} s; inventory ${lab.inventoryPath}\n`);
  for (const gw of lab.gateways) {
    process.stdout.write(`  ${gw.name}  ssh root@${gw.mgmtAddress}  links ${gw.links.map((l) => `${l.name}:${l.interface}`).join(' ')}\n`);
  }
  process.stdout.write(`remove it with: lbprov lab down --dir ${opts.dir}\n`);
  return EXIT_OK;
}

export async function labDownCommand(opts: LabDownOptions): Promise<number> {
  const removed = await labDown(resolve(opts.dir, 'state.json'));
  process.stdout.write(removed ? 'lab down: removed\n' : `lab down: no lab in ${opts.dir}\n`);
  return EXIT_OK;
}
