'use strict';
// Benchmark baseline: the Node/Express publish callback this gateway replaces, written the way such
// a service usually is (express.json(), ioredis, one XADD per publish, Express defaults otherwise).
// It is NOT part of the product; bench/callbacks.py starts it, loads it with wrk and stops it.
//
// Environment: PORT, REDIS_URL, CENTRIFUGO_PROXY_SECRET, REDIS_KEY_PREFIX (default "rtgw"),
// NODE_WORKERS (default 1: one process, as the replaced service ran; >1 uses node:cluster).

const cluster = require('node:cluster');
const { crc32 } = require('node:zlib');
const express = require('express');
const Redis = require('ioredis');

const PORT = Number(process.env.PORT || 3000);
const WORKERS = Number(process.env.NODE_WORKERS || 1);
const SECRET = process.env.CENTRIFUGO_PROXY_SECRET || '';
const PREFIX = process.env.REDIS_KEY_PREFIX || 'rtgw';
// Same layout as partitions/streams.py and the shipped `chat:*` rule: 8 partitions by channel.
const PARTITIONS = 8;
const MAXLEN = 100000;

const DENIED = { error: { code: 103, message: 'permission denied' } };

function serve() {
  const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
  const app = express();
  app.use(express.json());

  app.post('/centrifugo/publish', async (req, res) => {
    if (!SECRET || req.get('X-Centrifugo-Proxy-Secret') !== SECRET) {
      res.status(401).json({ error: { code: 107, message: 'missing or wrong proxy secret' } });
      return;
    }
    // Centrifugo's publish proxy runs with binary_encoding (centrifugo/config.json): the payload
    // arrives base64-encoded in b64data; stored as the decoded bytes, like the gateway stores it.
    const { channel, user, client, data, b64data } = req.body || {};
    if (typeof channel !== 'string' || channel === '') {
      res.status(400).json({ error: { code: 107, message: 'bad request: channel is required' } });
      return;
    }
    if (!user || !(channel.startsWith('chat:') || channel.startsWith('public:'))) {
      res.json(DENIED);
      return;
    }
    const stream = channel.slice(0, channel.indexOf(':'));
    const partition = crc32(channel) % PARTITIONS;
    const key = `${PREFIX}:stream:{${stream}:${partition}}`;
    try {
      const id = await redis.xadd(
        key, 'MAXLEN', '~', MAXLEN, '*',
        'channel', channel, 'user', String(user), 'client', String(client || ''),
        'data', b64data !== undefined ? Buffer.from(b64data, 'base64') : JSON.stringify(data === undefined ? null : data),
        'ts', String(Date.now()),
      );
      res.json({ result: { tags: { stream: key, stream_id: id, partition: String(partition) } } });
    } catch (err) {
      console.error('publish not stored:', err.message);
      res.json({ error: { code: 1503, message: 'message store unavailable, retry later', temporary: true } });
    }
  });

  app.listen(PORT, '127.0.0.1');
}

if (WORKERS > 1 && cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} exited (${signal || code})`);
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    process.exit(0);
  });
} else {
  serve();
}
