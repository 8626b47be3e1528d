import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/cache/index.js';
import { createRedisCache, type RedisCacheOptions } from '../../src/cache/redis.js';
import { isPortcullisError } from '../../src/lib/errors.js';
import { closedPort, startTcpProxy, type TcpProxy } from '../helpers/tcp_proxy.js';
import { describeCacheContract } from './cache_contract.js';

const url = process.env.PORTCULLIS_TEST_REDIS_URL;
if (!url) console.warn('PORTCULLIS_TEST_REDIS_URL is not set: the Redis cache contract and Redis tests are skipped');

const freshPrefix = () => `test:${randomBytes(6).toString('hex')}:`;
const open = (o: Partial<RedisCacheOptions> = {}) => createRedisCache({ url: url!, keyPrefix: freshPrefix(), ...o });

if (url) describeCacheContract('redis', () => open());

/** Time a promise takes to settle, and its rejection (expected to be ERR_CACHE). */
async function timedFailure(p: Promise<unknown>): Promise<{ ms: number; err: unknown }> {
  const start = performance.now();
  try {
    await p;
  } catch (err) {
    return { ms: performance.now() - start, err };
  }
  throw new Error('expected the call to fail');
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('redis cache without a server', () => {
  it('refuses to open against a closed loopback port with ERR_CACHE, quickly', async () => {
    const port = await closedPort();
    const { ms, err } = await timedFailure(createRedisCache({ url: `redis://127.0.0.1:${port}` }));
    expect(isPortcullisError(err, 'ERR_CACHE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(ms).toBeLessThan(1_000);
  });
});

describe.skipIf(!url)('redis cache', () => {
  let raw: Redis;
  const opened: Cache[] = [];
  const proxies: TcpProxy[] = [];
  const track = async (c: Promise<Cache>) => {
    const cache = await c;
    opened.push(cache);
    return cache;
  };
  beforeAll(() => {
    raw = new Redis(url!);
  });
  afterEach(async () => {
    for (const c of opened.splice(0)) await c.close();
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(() => raw.disconnect());

  it('keeps every key and channel under its prefix', async () => {
    const prefix = freshPrefix();
    const a = await track(open({ keyPrefix: prefix }));
    const b = await track(open());
    await a.addOnce('dpop:one', 10_000);
    await a.increment('rl:login:127.0.0.1', 10_000);
    expect((await raw.keys(`${prefix}*`)).sort()).toEqual([`${prefix}dpop:one`, `${prefix}rl:login:127.0.0.1`]);
    expect(await raw.exists('dpop:one')).toBe(0);
    expect(Number(await raw.pttl(`${prefix}dpop:one`))).toBeGreaterThan(9_000);
    // Another prefix is another namespace: neither its keys nor its channels meet these.
    expect(await b.addOnce('dpop:one', 10_000)).toBe(true);
    const got: string[] = [];
    await a.subscribe('revocations', (m) => got.push(m));
    await b.publish('revocations', 'other-deployment');
    await raw.publish(`${prefix}revocations`, 'same-deployment');
    await until(() => got.length > 0);
    await sleep(100);
    expect(got).toEqual(['same-deployment']);
  });

  it('fails every call with ERR_CACHE at once while Redis is gone, and recovers with its subscriptions', async () => {
    const proxy = await startTcpProxy({ host: new URL(url!).hostname, port: Number(new URL(url!).port || 6379) });
    proxies.push(proxy);
    const prefix = freshPrefix();
    const cache = await track(open({ url: proxy.url(), keyPrefix: prefix, commandTimeoutMs: 5_000 }));
    const got: string[] = [];
    let resyncs = 0;
    await cache.subscribe('keys', (m) => got.push(m), () => resyncs++);
    expect((await cache.increment('rl:a', 60_000)).count).toBe(1);

    await proxy.stop();
    await until(async () => (await cache.ping().then(() => true, () => false)) === false, 2_000);
    for (const call of [() => cache.addOnce('dpop:x', 1_000), () => cache.increment('rl:a', 60_000), () => cache.publish('keys', 'k'), () => cache.ping()]) {
      const { ms, err } = await timedFailure(call());
      expect(isPortcullisError(err, 'ERR_CACHE')).toBe(true);
      // At once, not by the (5 s) command timeout: a loaded CI machine gets some slack.
      expect(ms).toBeLessThan(1_000);
    }

    await proxy.start();
    // Back-off is at most ~2.1 s between attempts.
    await until(async () => cache.ping().then(() => true, () => false), 6_000);
    await until(() => resyncs === 1, 2_000);
    expect((await cache.increment('rl:a', 60_000)).count).toBe(2);
    await raw.publish(`${prefix}keys`, 'kid-after-reconnect');
    await until(() => got.length === 1);
    expect(got).toEqual(['kid-after-reconnect']);
  });

  it('bounds every command by the command timeout when Redis stops answering', async () => {
    const proxy = await startTcpProxy({ host: new URL(url!).hostname, port: Number(new URL(url!).port || 6379) });
    proxies.push(proxy);
    const cache = await track(open({ url: proxy.url(), commandTimeoutMs: 200 }));
    await cache.addOnce('dpop:before', 1_000);
    proxy.hang();
    for (const call of [() => cache.increment('rl:hang', 60_000), () => cache.addOnce('dpop:hang', 1_000), () => cache.ping()]) {
      const { ms, err } = await timedFailure(call());
      expect(isPortcullisError(err, 'ERR_CACHE')).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(190);
      expect(ms).toBeLessThan(700);
    }
  });

  it('subscribes again and resyncs after its subscriber connection is killed, and logs the loss and the recovery', async () => {
    const prefix = freshPrefix();
    const name = `pc-test-${randomBytes(4).toString('hex')}`;
    const logged: string[] = [];
    const cache = await track(open({ keyPrefix: prefix, connectionName: name, logger: { info: (_o, msg) => logged.push(msg), warn: (_o, msg) => logged.push(msg) } }));
    const got: string[] = [];
    let resyncs = 0;
    await cache.subscribe('revocations', (m) => got.push(m), () => resyncs++);
    const subscriberId = async () => {
      const list = String(await raw.client('LIST'));
      return /id=(\d+) .*name=(\S+)/.exec(list.split('\n').find((l) => l.includes(` name=${name}:subscriber `)) ?? '')?.[1];
    };
    const before = await subscriberId();
    expect(before).toBeDefined();
    expect(await raw.client('KILL', 'ID', before!)).toBe(1);
    await until(() => resyncs === 1, 6_000);
    expect(await subscriberId()).not.toBe(before);
    await cache.publish('revocations', 'jti-after-kill');
    await until(() => got.length === 1);
    expect(got).toEqual(['jti-after-kill']);
    expect(logged).toEqual(['redis connection closed; reconnecting with back-off', 'redis connection restored']);
  });

  it('quits both of its connections on close, without logging a lost connection', async () => {
    const name = `pc-test-${randomBytes(4).toString('hex')}`;
    const logged: string[] = [];
    const cache = await open({ connectionName: name, logger: { info: (_o, msg) => logged.push(msg), warn: (_o, msg) => logged.push(msg) } });
    const names = async () => (String(await raw.client('LIST')).match(new RegExp(`name=${name}:\\w+`, 'g')) ?? []).sort();
    expect(await names()).toEqual([`name=${name}:commands`, `name=${name}:subscriber`]);
    await cache.close();
    await until(async () => (await names()).length === 0, 2_000);
    await expect(cache.increment('rl:closed', 1_000)).rejects.toMatchObject({ code: 'ERR_CACHE' });
    await sleep(300); // past the first reconnect delay: nothing may be scheduled
    expect(logged).toEqual([]);
  });
});
