import type { FastifyInstance } from 'fastify';
import type { TokenModule } from '../issuer/module.js';
import { brokeredUpstreamToken } from '../issuer/upstream/broker.js';

const STATUS = { not_linked: 404, reconsent_required: 409, upstream_unavailable: 502 } as const;

/**
 * Brokered upstream tokens, behind the admin key:
 * - `GET /admin/users/<user id>/upstream`: the user's provider links (no tokens), with `needs_reconsent`;
 * - `POST /admin/users/<user id>/upstream/<provider>/token`: refreshes the stored upstream grant now and
 *   returns the provider's fresh access token (404 no link or no stored token, 409 re-consent
 *   needed, 502 provider unreachable). `<user id>` is the `sub` of the user's Portcullis tokens.
 */
export function registerUpstreamAdmin(admin: FastifyInstance, tokens: TokenModule): void {
  const { ctx } = tokens;
  admin.get('/admin/users/:userId/upstream', async (req, reply) => {
    const { userId } = req.params as { userId: string };
    if (!(await ctx.store.users.byId(userId))) return reply.code(404).send({ error: 'not_found' });
    const links = await ctx.store.identities.forUser(userId);
    return {
      links: links.map((l) => ({
        provider: l.provider,
        subject: l.subject,
        email: l.email,
        created_at: new Date(l.createdAt).toISOString(),
        needs_reconsent: l.needsReconsent,
        token_stored: l.refreshTokenCiphertext !== null,
        token_updated_at: l.tokenUpdatedAt === null ? null : new Date(l.tokenUpdatedAt).toISOString(),
      })),
    };
  });
  admin.post('/admin/users/:userId/upstream/:provider/token', async (req, reply) => {
    const { userId, provider: providerId } = req.params as { userId: string; provider: string };
    const provider = ctx.upstream.get(providerId);
    if (!provider || !provider.settings.store_tokens) return reply.code(404).send({ error: 'not_found', detail: 'no upstream provider with store_tokens under this id' });
    const result = await brokeredUpstreamToken(ctx, provider, userId);
    reply.header('cache-control', 'no-store');
    if (!result.ok) return reply.code(STATUS[result.error]).send({ error: result.error });
    return { ...result.token, provider: provider.id };
  });
}
