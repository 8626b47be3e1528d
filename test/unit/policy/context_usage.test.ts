import { describe, expect, it } from 'vitest';
import { unionContextKeys } from '../../../src/policy/context_usage.js';
import { parsePolicyFile } from '../../../src/policy/policy_set.js';

/** The context attributes of each policy in a file, as the loader records them (from the policy's JSON form). */
const keysOf = (text: string) => parsePolicyFile('p.cedar', text).map((p) => (p.contextKeys === 'all' ? 'all' : [...p.contextKeys].sort()));

describe('context attributes a policy reads (what the engine passes and the decision cache keys on)', () => {
  it('finds attribute reads and has-tests anywhere in the conditions, by their top-level attribute', () => {
    expect(
      keysOf(`
        permit(principal, action, resource) when { context.time < 1800000000 };
        permit(principal, action, resource) when { context has mfa && context.mfa } unless { context.ip.isLoopback() };
        permit(principal, action, resource) when { context.body.kind == "draft" && resource.owner == principal };
        permit(principal, action, resource);
      `),
    ).toEqual([['time'], ['ip', 'mfa'], ['body'], []]);
  });

  it('takes the whole context when a policy uses the record itself, not only its attributes', () => {
    expect(keysOf('permit(principal, action, resource) when { context == { "mfa": true } };')).toEqual(['all']);
    expect(keysOf('permit(principal, action, resource) when { [context].contains({ "mfa": true }) && context.time > 0 };')).toEqual(['all']);
  });

  it('unites the keys of a slice, and one whole-context policy makes the slice take everything', () => {
    const [time, mfa, all] = parsePolicyFile('p.cedar', 'permit(principal, action, resource) when { context.time > 0 };\npermit(principal, action, resource) when { context.mfa };\npermit(principal, action, resource) when { context == {} };').map((p) => p.contextKeys);
    expect([...(unionContextKeys([time!, mfa!]) as Set<string>)].sort()).toEqual(['mfa', 'time']);
    expect(unionContextKeys([time!, all!, mfa!])).toBe('all');
    expect([...(unionContextKeys([]) as Set<string>)]).toEqual([]);
  });
});
