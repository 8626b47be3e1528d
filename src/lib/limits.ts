import { PortcullisError } from './errors.js';

/**
 * The explicit input limits, as bounded metric labels (`auth_limit_exceeded_total{limit}`). Each
 * has a config key; `LimitExceeded.key` names it so an error tells the operator what to raise.
 */
export type LimitName = 'header_count' | 'header_bytes' | 'request_body' | 'token' | 'entities' | 'jwks_document' | 'policy_file';

export const LIMIT_KEYS: Readonly<Record<LimitName, string>> = {
  header_count: 'limits.max_header_count',
  header_bytes: 'limits.max_header_bytes',
  request_body: 'request_body.max_bytes',
  token: 'limits.max_token_bytes',
  entities: 'limits.max_entities',
  jwks_document: 'issuers[].jwks.max_bytes',
  policy_file: 'policies.max_file_bytes',
};

/** Input over one of the limits. The message names the limit and its value; never user data. */
export class LimitExceeded extends PortcullisError {
  readonly limit: LimitName;
  readonly key: string;

  constructor(limit: LimitName, message: string) {
    super('ERR_LIMIT_EXCEEDED', `${message} (${LIMIT_KEYS[limit]})`);
    this.name = 'LimitExceeded';
    this.limit = limit;
    this.key = LIMIT_KEYS[limit];
  }
}
