/**
 * Small Node programs the lab runs inside its namespaces (`ip netns exec NS node FILE`). They are
 * kept here as text and written into the lab directory, so the lab works the same from src/ (tests)
 * and from dist/ (the CLI), and a lab directory is self-contained.
 */

/**
 * argv: JSON {addresses, tcpPorts, udpPorts, echoPort, controlSocket}; every port on every address.
 * tcpPorts: sends the peer address it saw, then closes; counts connections per source address.
 * udpPorts: answers each datagram with the peer address it saw; counted like a connection.
 * echoPort: sends the peer address, then echoes everything back (long-lived connections).
 * controlSocket (unix, reachable from the root namespace): "counts" or "reset" -> JSON counts.
 */
export const SERVER = String.raw`
import dgram from 'node:dgram';
import net from 'node:net';
import fs from 'node:fs';

const { addresses, tcpPorts, udpPorts, echoPort, controlSocket } = JSON.parse(process.argv[2]);
const counts = new Map();
const count = (source) => counts.set(source, (counts.get(source) ?? 0) + 1);
const peerOf = (socket) => String(socket.remoteAddress).replace(/^::ffff:/, '');
const listen = (server, options) =>
  new Promise((resolve, reject) => server.once('error', reject).listen(options, resolve));

const answer = (socket) => {
  const source = peerOf(socket);
  count(source);
  socket.on('error', () => {});
  socket.end(source + '\n');
};
const echo = (socket) => {
  socket.on('error', () => {});
  socket.setNoDelay(true);
  socket.write(peerOf(socket) + '\n');
  socket.pipe(socket);
};
const bindUdp = (host, port) => new Promise((resolve, reject) => {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (_, peer) => {
    count(peer.address);
    socket.send(peer.address + '\n', peer.port, peer.address);
  });
  socket.once('error', reject).bind(port, host, () => {
    // A failed send (the peer's socket already gone) must not end the server.
    socket.removeListener('error', reject).on('error', () => {});
    resolve();
  });
});
const control = net.createServer((socket) => {
  let command = '';
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    command += chunk;
    if (!command.includes('\n')) return;
    const snapshot = JSON.stringify(Object.fromEntries(counts));
    if (command.trim() === 'reset') counts.clear();
    socket.end(snapshot + '\n');
  });
});

for (const host of addresses) {
  for (const port of tcpPorts) await listen(net.createServer(answer), { host, port, backlog: 1024 });
  for (const port of udpPorts) await bindUdp(host, port);
  await listen(net.createServer(echo), { host, port: echoPort });
}
fs.rmSync(controlSocket, { force: true });
await listen(control, { path: controlSocket });
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * argv: JSON {host, port, protocol, sources, count, concurrency, idleTimeoutMs, deadlineMs}.
 * Makes `count` attempts (at most `concurrency` at once, none after the deadline), attempt i bound
 * to sources[i % sources.length]: a new TCP connection, or one UDP datagram from a new socket
 * (a new port, so a new conntrack entry, as a new connection is). Prints JSON {byLanSource,
 * errors, attempted, elapsedMs}: per source bound, the addresses the server saw and how often.
 */
export const TRAFFIC_CLIENT = String.raw`
import dgram from 'node:dgram';
import net from 'node:net';

const { host, port, protocol, sources, count, concurrency, idleTimeoutMs, deadlineMs } = JSON.parse(process.argv[2]);
const byLanSource = Object.fromEntries(sources.map((source) => [source, {}]));
const errors = {};
const started = Date.now();
let attempted = 0;

/** Resolves {reply} or {error: code}. */
const overTcp = (localAddress) => new Promise((resolve) => {
  let reply = '';
  const socket = net.connect({ host, port, localAddress });
  const finish = (error) => {
    socket.destroy();
    resolve({ reply, error });
  };
  socket.setTimeout(idleTimeoutMs, () => finish('ETIMEDOUT'));
  socket.on('data', (chunk) => { reply += chunk; });
  socket.on('error', (error) => finish(error.code ?? 'ERROR'));
  socket.on('end', () => finish());
});

const overUdp = (address) => new Promise((resolve) => {
  const socket = dgram.createSocket('udp4');
  let settled = false;
  const finish = (reply, error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.close();
    resolve({ reply, error });
  };
  const timer = setTimeout(() => finish('', 'ETIMEDOUT'), idleTimeoutMs);
  socket.on('message', (message) => finish(String(message)));
  socket.on('error', (error) => finish('', error.code ?? 'ERROR'));
  socket.bind({ address, port: 0 }, () => socket.send('?', port, host, (error) => error && finish('', error.code ?? 'ERROR')));
});

const attempt = protocol === 'udp' ? overUdp : overTcp;
const lane = async () => {
  while (attempted < count && Date.now() - started < deadlineMs) {
    const source = sources[attempted++ % sources.length];
    const { reply, error } = await attempt(source);
    const seen = reply.trim();
    if (error === undefined && seen !== '') byLanSource[source][seen] = (byLanSource[source][seen] ?? 0) + 1;
    else {
      const code = error ?? 'EMPTY_REPLY';
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
};
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
process.stdout.write(JSON.stringify({ byLanSource, errors, attempted, elapsedMs: Date.now() - started }) + '\n');
`;

/**
 * argv: host port. Holds one connection to the echo port. Prints JSON lines:
 * {"event":"connected","source":...}, {"event":"echo","data":...}, {"event":"error","code":...},
 * {"event":"closed"}. Each stdin line is sent on the connection; stdin closing ends it.
 */
export const LONG_CONNECTION = String.raw`
import net from 'node:net';
import readline from 'node:readline';

const [host, port] = process.argv.slice(2);
const report = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const socket = net.connect({ host, port: Number(port) });
socket.setNoDelay(true);
let greeted = false;
let buffered = '';
socket.on('data', (chunk) => {
  buffered += chunk;
  for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
    const line = buffered.slice(0, end);
    buffered = buffered.slice(end + 1);
    if (greeted) report({ event: 'echo', data: line });
    else {
      greeted = true;
      report({ event: 'connected', source: line });
    }
  }
});
socket.on('error', (error) => report({ event: 'error', code: error.code ?? 'ERROR' }));
socket.on('close', () => {
  report({ event: 'closed' });
  process.exit(0);
});
readline.createInterface({ input: process.stdin })
  .on('line', (line) => socket.write(line + '\n'))
  .on('close', () => socket.destroy());
`;

export const AGENT_FILES = {
  server: 'server.mjs',
  trafficClient: 'traffic-client.mjs',
  longConnection: 'long-connection.mjs',
} as const;

export const AGENT_SOURCES: Record<keyof typeof AGENT_FILES, string> = {
  server: SERVER,
  trafficClient: TRAFFIC_CLIENT,
  longConnection: LONG_CONNECTION,
};
