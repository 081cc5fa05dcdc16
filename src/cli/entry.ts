#!/usr/bin/env node
/**
 * The lbprov executable. `--version` is answered before the rest of the CLI is loaded: start-up is
 * paid by every command, and a version probe (scripts, fleet inventories) should pay nothing else.
 */
import { setFlagsFromString } from 'node:v8';
import { LBPROV_VERSION } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${LBPROV_VERSION}\n`);
else {
  // No optimising compiler: a run is short and its time is spread over many functions, so
  // TurboFan's compiles cost more CPU than they save (a no-op plan of 30 lab gateways: 0.9 s of
  // controller CPU with it, 0.6 s without; 200 gateways: 3.4 s against 2.7 s). Set before the CLI
  // loads, so none of it was compiled under the default.
  setFlagsFromString('--no-opt');
  await import('./main.js');
}
