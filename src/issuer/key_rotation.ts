import type { IssuerContext } from './context.js';
import type { KeyState } from './keyring.js';

export type RotationTrigger = 'cli' | 'admin' | 'schedule';

/** One rotation, counted, audited and announced to the other replicas the same way whoever asked for it. */
export async function rotateSigningKey(ctx: IssuerContext, trigger: RotationTrigger, immediate = false, revokePrevious = false): Promise<KeyState> {
  const key = await ctx.keyring.rotate({ immediate, revokePrevious });
  ctx.metrics.keyRotations.inc({ trigger });
  await ctx.fanout.keysChanged(key.kid);
  await ctx.audit.record('key.rotated', 'success', { details: { trigger, kid: key.kid, activates_at: new Date(key.activatesAt).toISOString(), immediate, revoke_previous: revokePrevious } });
  return key;
}
