/**
 * Small Node programs the lab runs inside its namespaces (`ip netns exec NS node FILE`). They are
 * kept here as text and written into the lab directory, so the lab works the same from src/ (tests)
 * and from dist/ (the CLI), and a lab directory is self-contained.
 */

/**
 * argv: address answerPort echoPort controlSocket.
 * answerPort: sends the peer address it saw, then closes; counts connections per source address.
 * echoPort: sends the peer address, then echoes everything back (long-lived connections).
 * controlSocket (unix, reachable from the root namespace): "counts" or "reset" -> JSON counts.
 */
export const TCP_SERVER = String.raw`
import net from 'node:net';
import fs from 'node:fs';

const [address, answerPort, echoPort, controlSocket] = process.argv.slice(2);
const counts = new Map();
const peerOf = (socket) => String(socket.remoteAddress).replace(/^::ffff:/, '');
const listen = (server, options) =>
  new Promise((resolve, reject) => server.once('error', reject).listen(options, resolve));

const answer = net.createServer((socket) => {
  const source = peerOf(socket);
  counts.set(source, (counts.get(source) ?? 0) + 1);
  socket.on('error', () => {});
  socket.end(source + '\n');
});
const echo = net.createServer((socket) => {
  socket.on('error', () => {});
  socket.setNoDelay(true);
  socket.write(peerOf(socket) + '\n');
  socket.pipe(socket);
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

await listen(answer, { host: address, port: Number(answerPort), backlog: 1024 });
await listen(echo, { host: address, port: Number(echoPort) });
fs.rmSync(controlSocket, { force: true });
await listen(control, { path: controlSocket });
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * argv: JSON {host, port, count, concurrency, idleTimeoutMs, deadlineMs}.
 * Opens `count` new connections (at most `concurrency` at once, stops at the deadline) and prints
 * JSON {bySource, errors, attempted, elapsedMs}: the address the server saw for each connection.
 */
export const TCP_CLIENT = String.raw`
import net from 'node:net';

const { host, port, count, concurrency, idleTimeoutMs, deadlineMs } = JSON.parse(process.argv[2]);
const bySource = {};
const errors = {};
const started = Date.now();
let attempted = 0;

const connectOnce = () => new Promise((resolve) => {
  let reply = '';
  let settled = false;
  const socket = net.connect({ host, port });
  const finish = (error) => {
    if (settled) return;
    settled = true;
    socket.destroy();
    const source = reply.trim();
    if (error === undefined && source !== '') bySource[source] = (bySource[source] ?? 0) + 1;
    else {
      const code = error ?? 'EMPTY_REPLY';
      errors[code] = (errors[code] ?? 0) + 1;
    }
    resolve();
  };
  socket.setTimeout(idleTimeoutMs, () => finish('ETIMEDOUT'));
  socket.on('data', (chunk) => { reply += chunk; });
  socket.on('error', (error) => finish(error.code ?? 'ERROR'));
  socket.on('end', () => finish());
});

const lane = async () => {
  while (attempted < count && Date.now() - started < deadlineMs) {
    attempted++;
    await connectOnce();
  }
};
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
process.stdout.write(JSON.stringify({ bySource, errors, attempted, elapsedMs: Date.now() - started }) + '\n');
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
  tcpServer: 'tcp-server.mjs',
  tcpClient: 'tcp-client.mjs',
  longConnection: 'long-connection.mjs',
} as const;

export const AGENT_SOURCES: Record<keyof typeof AGENT_FILES, string> = {
  tcpServer: TCP_SERVER,
  tcpClient: TCP_CLIENT,
  longConnection: LONG_CONNECTION,
};
