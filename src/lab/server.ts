/** The lab's "internet" server: TCP and UDP in its own namespace, counting connections by source address. */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_FILES } from './agents.js';
import { LabError } from './errors.js';
import { processStartTime } from './processes.js';
import type { LabState, StartedProcess } from './state.js';

export function agentPath(state: LabState, agent: keyof typeof AGENT_FILES): string {
  return join(state.dir, 'agents', AGENT_FILES[agent]);
}

/** Sends one command to the server's control socket and returns the counts it answers. */
export function askServer(state: LabState, command: 'counts' | 'reset', timeoutMs = 2_000): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const socket = connect(state.server.controlSocket);
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(new LabError(`lab server (${state.server.controlSocket}): ${error.message}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(JSON.parse(reply) as Record<string, number>);
    });
  });
}

export async function startTcpServer(state: LabState, timeoutMs = 10_000): Promise<StartedProcess> {
  const logFile = join(state.dir, 'server.log');
  const log = openSync(logFile, 'a');
  const { ns, serviceAddresses, tcpPorts, udpPorts, echoPort, controlSocket } = state.server;
  const config = { addresses: serviceAddresses, tcpPorts, udpPorts, echoPort, controlSocket };
  let child;
  try {
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, agentPath(state, 'server'), JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new LabError('cannot start the lab server');
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await askServer(state, 'counts', 500);
      return { pid, startTime: processStartTime(pid) ?? '', role: 'tcp server' };
    } catch (error) {
      if (exited !== undefined || Date.now() > deadline) {
        const why = exited !== undefined ? `exited with ${exited}` : (error as Error).message;
        throw new LabError(`lab server ${why}: ${readFileSync(logFile, 'utf8').trim()}`);
      }
      await sleep(25);
    }
  }
}

