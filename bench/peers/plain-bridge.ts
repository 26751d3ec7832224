/**
 * The bridge a tutorial would write: serialport + ReadlineParser + net, every line to every client. It is the
 * baseline of `npm run bench` (issue 6), kept as plain as the tutorials on purpose: do not optimise it.
 *
 * Usage: node dist/bench/peers/plain-bridge.js DEVICE PORT [HOST]
 */
import { SerialPort } from 'serialport';
import { ReadlineParser } from '@serialport/parser-readline';
import * as net from 'node:net';

const [path, portArg, host = '127.0.0.1'] = process.argv.slice(2);
if (!path || !portArg) {
  console.error('usage: plain-bridge DEVICE PORT [HOST]');
  process.exit(2);
}

const clients = new Set<net.Socket>();
const port = new SerialPort({ path, baudRate: 115200 });
const parser = port.pipe(new ReadlineParser({ delimiter: '\r\n' }));

parser.on('data', (line: string) => {
  for (const client of clients) client.write(line + '\r\n');
});
port.on('error', (err) => console.error('serial error:', err.message));

const server = net.createServer((socket) => {
  clients.add(socket);
  socket.on('data', (data) => port.write(data));
  socket.on('close', () => clients.delete(socket));
  socket.on('error', () => clients.delete(socket));
});

server.listen(Number(portArg), host, () => console.log(`listening on ${host}:${portArg}`));

process.on('SIGTERM', () => {
  server.close();
  for (const c of clients) c.destroy();
  port.close(() => process.exit(0));
});
