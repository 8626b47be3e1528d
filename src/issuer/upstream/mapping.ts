import { randomUUID } from 'node:crypto';
import type { UserRecord } from '../../store/index.js';
import type { IssuerContext } from '../context.js';
import { sha256 } from '../secrets.js';
import type { ExternalIdentity } from './identity.js';
import type { UpstreamProvider } from './provider.js';

export type MappedBy = 'link' | 'verified_email' | 'provisioned';

/** No user for this external account, and the provider's configuration allows none to be made. */
export class UnmappedIdentity extends Error {
  readonly reason = 'unmapped_external_identity';
}

/**
 * Finds the user of an external account, by `(provider, subject)`: an existing link; else, when
 * configured, the one user with the same email the provider verified (linked now); else, when
 * configured, a new user without a password (provisioned now); else UnmappedIdentity. Links and
 * provisioning are audited; the caller records the outcome of the login or exchange itself.
 */
export async function mapExternalIdentity(ctx: IssuerContext, provider: UpstreamProvider, id: ExternalIdentity, ip: string | null): Promise<{ user: UserRecord; by: MappedBy }> {
  const linked = await linkedUser(ctx, provider, id.subject);
  if (linked) return { user: linked, by: 'link' };
  const s = provider.settings;
  const now = ctx.clock.now();
  if (s.link_by_verified_email && id.email && id.emailVerified) {
    const matches = await ctx.store.users.byEmail(id.email);
    // Two users with one email is ambiguous: link neither.
    if (matches.length === 1 && (await ctx.store.identities.link({ provider: provider.id, subject: id.subject, userId: matches[0]!.id, email: id.email, createdAt: now }))) {
      await ctx.audit.record('identity.linked', 'success', { userId: matches[0]!.id, ip, details: { provider: provider.id, by: 'verified_email' } });
      return { user: matches[0]!, by: 'verified_email' };
    }
  }
  if (s.auto_provision) {
    const userId = randomUUID();
    const roles = [...new Set([...s.default_roles, ...id.roles])];
    const user = { id: userId, username: provisionedUsername(provider.id, id.subject), name: id.name, email: id.email, roles, passwordHash: null, createdAt: now };
    if (await ctx.store.identities.provision(user, { provider: provider.id, subject: id.subject, email: id.email, createdAt: now })) {
      await ctx.audit.record('identity.provisioned', 'success', { userId, ip, details: { provider: provider.id, roles } });
      return { user: (await ctx.store.users.byId(userId))!, by: 'provisioned' };
    }
    // A parallel login of the same account provisioned it first.
    const raced = await linkedUser(ctx, provider, id.subject);
    if (raced) return { user: raced, by: 'link' };
  }
  throw new UnmappedIdentity('the external account maps to no user');
}

async function linkedUser(ctx: IssuerContext, provider: UpstreamProvider, subject: string): Promise<UserRecord | undefined> {
  const link = await ctx.store.identities.find(provider.id, subject);
  return link ? ctx.store.users.byId(link.userId) : undefined;
}

const READABLE_SUBJECT = /^[A-Za-z0-9._@-]{1,96}$/;

/** `<provider>+<subject>`, or a hash of the subject when it is long or unusual; deterministic, so a race provisions once. */
export function provisionedUsername(providerId: string, subject: string): string {
  return `${providerId}+${READABLE_SUBJECT.test(subject) ? subject : sha256(subject).slice(0, 22)}`;
}
