#!/usr/bin/env node
/**
 * The lbprov executable. `--version` is answered before the rest of the CLI is loaded: start-up is
 * paid by every command, and a version probe (scripts, fleet inventories) should pay nothing else.
 */
import { LBPROV_VERSION } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) process.stdout.write(`${LBPROV_VERSION}\n`);
else await import('./main.js');
