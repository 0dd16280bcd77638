// Interop: npm `vscode-jsonrpc` (Content-Length framing, the LSP/StreamJsonRpc default) against the
// real `photobulk serve` Unix socket. Usage: node vscode_client.mjs PATH/TO/photobulk PHOTO.jpg
import { spawn } from 'node:child_process';
import { mkdtempSync, existsSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import rpc from 'vscode-jsonrpc/node.js';

const [exe, photo] = process.argv.slice(2);
const tmp = mkdtempSync(join(tmpdir(), 'pb-interop-node-'));
const child = spawn(exe, ['serve', '--pipe', 'interop-node', '--idle-timeout', '60'], {
  env: { ...process.env, TMPDIR: tmp },
  stdio: ['ignore', 'pipe', openSync(join(tmp, 'serve.log'), 'w')],
});
const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
const startLine = await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
const start = JSON.parse(startLine);
assert.equal(start.status, 'started', startLine);

const socket = connect(start.path);
await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(socket), new rpc.StreamMessageWriter(socket));
const notes = [];
conn.onNotification((method, params) => notes.push({ method, params }));
conn.listen();

const init = await conn.sendRequest('initialize', { protocolVersion: 1, clientName: 'vscode-jsonrpc' });
assert.equal(init.serverName, 'photobulk');
assert.ok(init.capabilities.framings.includes('content-length'));

const prep = await conn.sendRequest('image.prepare', { paths: [photo], targets: ['ad'], outDir: join(tmp, 'out') });
assert.equal(prep.items.length, 1);
assert.ok(prep.items[0].ok, JSON.stringify(prep.items[0]));
assert.equal(prep.items[0].outputs[0].width, 96);

await assert.rejects(conn.sendRequest('no.such.method', {}), (e) => e.code === -32601);
await assert.rejects(conn.sendRequest('photo.get', { identity: 5 }), (e) => e.code === -32602 && e.data.kind === 'invalid_params');
await assert.rejects(conn.sendRequest('bulk.run', { items: [{ path: photo }] }), (e) => e.data.kind === 'not_connected');

assert.equal(await conn.sendRequest('shutdown'), null);
conn.dispose();
socket.destroy();
const code = await exited;
assert.equal(code, 0);
assert.ok(!existsSync(start.path), 'socket left behind');
console.log('vscode-jsonrpc client: ok (Content-Length framing: initialize, image.prepare, errors -32601/-32602/not_connected, shutdown)');
