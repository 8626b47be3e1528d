/**
 * Login load for the store experiments: one loop per user posting `/login`, every outcome recorded
 * with its time, then a check that every acknowledged login (200 with tokens) survived: its refresh
 * token still rotates.
 */
import { BUILTIN_LOGIN_CLIENT } from '../../src/issuer/builtin_client.js';
import { sleep } from '../lib/long_run.js';

export const PASSWORD = 'chaos-password-0123';

export interface LoginOutcome {
  /** performance.now() when the answer (or the error) arrived. */
  at: number;
  ok: boolean;
  detail: string;
  refreshToken?: string;
}

/** Loops until `untilMs` (performance.now()) or `maxPerLoop` logins each; `base()` is read per request (restarts). */
export async function loginLoad(base: () => string, users: string[], untilMs: number, maxPerLoop = 50_000): Promise<LoginOutcome[]> {
  const outcomes: LoginOutcome[] = [];
  await Promise.all(
    users.map(async (username) => {
      for (let i = 0; i < maxPerLoop && performance.now() < untilMs; i++) {
        const outcome = await loginOnce(base(), username);
        outcomes.push(outcome);
        if (!outcome.ok) await sleep(50); // a refused connection fails at once: do not spin
      }
    }),
  );
  return outcomes.sort((a, b) => a.at - b.at);
}

async function loginOnce(base: string, username: string): Promise<LoginOutcome> {
  try {
    const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }), signal: AbortSignal.timeout(15_000) });
    const body = (await res.json()) as { refresh_token?: string; access_token?: string; error?: string };
    const ok = res.status === 200 && Boolean(body.access_token);
    return { at: performance.now(), ok, detail: ok ? '200' : `${res.status} ${body.error ?? ''}`, ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}) };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { at: performance.now(), ok: false, detail: cause ?? (err as Error).name };
  }
}

/** Rotates each acknowledged login's refresh token once (8 at a time); returns the ones refused. */
export async function lostLogins(base: string, acknowledged: LoginOutcome[]): Promise<string[]> {
  const queue = acknowledged.filter((o) => o.refreshToken);
  const lost: string[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let o = queue.pop(); o; o = queue.pop()) {
        const res = await fetch(`${base}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=refresh_token&client_id=${BUILTIN_LOGIN_CLIENT}&refresh_token=${encodeURIComponent(o.refreshToken!)}`,
          signal: AbortSignal.timeout(15_000),
        });
        if (res.status !== 200) lost.push(`${res.status} ${((await res.json()) as { error?: string }).error}`);
      }
    }),
  );
  return lost;
}

/** From the first failed login to the last one (ms), and how many failed. */
export function errorWindow(outcomes: LoginOutcome[]): { failed: number; firstAt: number | undefined; lastAt: number | undefined; windowMs: number } {
  const failed = outcomes.filter((o) => !o.ok);
  const firstAt = failed[0]?.at;
  const lastAt = failed.at(-1)?.at;
  return { failed: failed.length, firstAt, lastAt, windowMs: firstAt === undefined ? 0 : Math.round(lastAt! - firstAt) };
}
