import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/telemetry/logger.js';
import { withRequestContext } from '../../../src/telemetry/request_context.js';

function sink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

describe('logger', () => {
  it('adds the request and decision ids of the request being handled to every line, across awaits', async () => {
    const { lines, stream } = sink();
    const logger = createLogger('info', stream);
    logger.info('outside');
    await withRequestContext({ request_id: 'req-7' }, async () => {
      logger.info('before decision');
      await new Promise((r) => setTimeout(r, 5));
      await withRequestContext({ request_id: 'req-7', decision_id: 'dec-9' }, async () => {
        await Promise.resolve();
        logger.warn({ request_id: 'explicit' }, 'deep inside');
      });
    });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[0]).not.toHaveProperty('request_id');
    expect(parsed[1]).toMatchObject({ msg: 'before decision', request_id: 'req-7' });
    expect(parsed[1]).not.toHaveProperty('decision_id');
    // A field the line sets itself wins over the context.
    expect(parsed[2]).toMatchObject({ msg: 'deep inside', request_id: 'explicit', decision_id: 'dec-9' });
  });

  it('writes human-readable text with the same fields and the same redaction', () => {
    const { lines, stream } = sink();
    const logger = createLogger('info', stream, 'text');
    withRequestContext({ request_id: 'req-text', decision_id: 'dec-text' }, () => logger.info({ password: 'hunter2-secret', nested: { token: 'tok-secret' }, resource_type: 'Document' }, 'denied'));
    const text = lines.join('\n');
    expect(() => JSON.parse(lines[0]!)).toThrow();
    expect(text).toMatch(/INFO.*denied/);
    expect(text).toContain('req-text');
    expect(text).toContain('dec-text');
    expect(text).toContain('Document');
    expect(text).not.toContain('hunter2-secret');
    expect(text).not.toContain('tok-secret');
    expect(text).toContain('[redacted]');
  });

  describe('on stdout', () => {
    const ROOT = new URL('../../..', import.meta.url).pathname;
    const run = (mode: string) =>
      spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'test/fixtures/stdout_logger.ts'), mode], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    const messages = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);

    it('writes the lines of one event-loop turn, from every logger, in one write and in order', () => {
      const r = run('turns');
      expect(r.status).toBe(0);
      expect(messages(r.stdout)).toEqual(['one', 'two', 'three', 'four']);
      // One write for the first turn's three lines (one per line before), one for the next turn's.
      expect(JSON.parse(r.stderr)).toEqual({ afterFirstTurn: 1, total: 2 });
    });

    it('writes decision records sent to stdout in the same batch, between the log lines around them', () => {
      const r = run('decisions');
      expect(r.status).toBe(0);
      const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg?: string; decision_id?: string });
      expect(lines.map((l) => l.msg ?? l.decision_id)).toEqual(['before the decision', 'd-1', 'after the decision']);
      expect(JSON.parse(r.stderr)).toEqual({ total: 1 });
    });

    it('writes a long turn in writes of whole lines up to 4096 bytes (atomic on a pipe shared with cluster workers)', () => {
      const r = run('large');
      expect(r.status).toBe(0);
      expect(messages(r.stdout)).toHaveLength(100);
      const { sizes } = JSON.parse(r.stderr) as { sizes: Array<{ bytes: number; wholeLines: boolean }> };
      // ~150 bytes a line: ~15 KB in four or five writes, none over 4096 bytes, each ending a line.
      expect(sizes.length).toBeGreaterThanOrEqual(4);
      expect(sizes.length).toBeLessThanOrEqual(6);
      for (const s of sizes) expect(s).toMatchObject({ wholeLines: true });
      expect(Math.max(...sizes.map((s) => s.bytes))).toBeLessThanOrEqual(4096);
      expect(sizes.reduce((n, s) => n + s.bytes, 0)).toBe(Buffer.byteLength(r.stdout));
    });

    it('writes an error line at once, with the lines pending before it; flush calls back', () => {
      const r = run('error');
      expect(r.status).toBe(0);
      expect(messages(r.stdout)).toEqual(['before', 'failed', 'after']);
      expect(JSON.parse(r.stderr)).toEqual({ afterError: 1, total: 2, flushed: true });
    });

    it('writes what is pending when the process exits before the turn ends', () => {
      const r = run('exit');
      expect(r.status).toBe(3);
      expect(messages(r.stdout)).toEqual(['before exit']);
    });
  });
});

