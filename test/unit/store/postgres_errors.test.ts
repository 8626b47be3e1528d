import { describe, expect, it } from 'vitest';
import { isConnectionFailure, isUnavailable, retryDelay } from '../../../src/store/postgres_errors.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('PostgreSQL error classification', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a session killed by the server (57P01)', pgError('57P01', 'terminating connection due to administrator command')],
    ['a server that cannot take connections yet (57P03)', pgError('57P03', 'the database system is starting up')],
    ['a full server (53300)', pgError('53300', 'sorry, too many clients already')],
    ['a connection exception (08006)', pgError('08006')],
    ['a connection closed under a query', new Error('Connection terminated unexpectedly')],
    ['no pooled connection in time', new Error('timeout exceeded when trying to connect')],
  ])('treats %s as a connection failure: retryable for reads, unavailable', (_name, err) => {
    expect(isConnectionFailure(err)).toBe(true);
    expect(isUnavailable(err)).toBe(true);
  });

  it.each([
    ['a statement timeout (57014)', pgError('57014', 'canceling statement due to statement timeout')],
    ['a lock timeout (55P03)', pgError('55P03')],
    ['a client-side query timeout', new Error('Query read timeout')],
  ])('treats %s as unavailable but not retryable (the statement may have run)', (_name, err) => {
    expect(isConnectionFailure(err)).toBe(false);
    expect(isUnavailable(err)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', pgError('23505', 'duplicate key value violates unique constraint')],
    ['a syntax error (42601)', pgError('42601')],
    ['a wrong password (28P01)', pgError('28P01', 'password authentication failed')],
    ['a missing database (3D000)', pgError('3D000')],
    ['anything else', new TypeError('boom')],
  ])('treats %s as an ordinary store error', (_name, err) => {
    expect(isConnectionFailure(err)).toBe(false);
    expect(isUnavailable(err)).toBe(false);
  });

  it('backs off exponentially with jitter, capped at one second', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const base = Math.min(50 * 2 ** (attempt - 1), 1_000);
      for (let i = 0; i < 20; i++) {
        const d = retryDelay(attempt);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      }
    }
  });
});
