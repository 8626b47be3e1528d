/** The Cedar entity types Portcullis builds requests from. */
export const PRINCIPAL_TYPE = 'User';
export const ROLE_TYPE = 'Role';
export const ACTION_TYPE = 'Action';
/** Principal id of requests without a token (on routes marked `anonymous: true`). */
export const ANONYMOUS_ID = 'anonymous';
