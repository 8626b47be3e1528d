import type { ClientRecord } from '../store/index.js';
import type { AuthorizationRequest } from './authorize.js';
import type { Stage } from './interaction.js';

/**
 * Server-rendered login, MFA, consent and error pages: plain HTML forms (no scripts at all), one
 * stylesheet, labels tied to inputs, autocomplete hints for password managers and one-time codes.
 */
export const STYLESHEET_PATH = '/static/portcullis.css';

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · Portcullis</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

const errorBlock = (error: string | undefined) => (error ? `<p class="error" role="alert" id="form-error">${escapeHtml(error)}</p>` : '');
const describedBy = (error: string | undefined) => (error ? ' aria-describedby="form-error"' : '');

export interface PageInput {
  stage: Stage;
  error?: string | undefined;
  client: ClientRecord;
  request: AuthorizationRequest;
  csrf: string;
  /** Upstream providers offered on the login page ("Sign in with <name>"). */
  providers?: ReadonlyArray<{ id: string; name: string }> | undefined;
}

/** One form, one button per provider: posting it (with the CSRF token) starts the login at that provider. */
function providerButtons(providers: PageInput['providers'], csrf: string): string {
  if (!providers?.length) return '';
  const buttons = providers.map((p) => `<button type="submit" name="provider" value="${escapeHtml(p.id)}">Sign in with ${escapeHtml(p.name)}</button>`).join('\n');
  return `\n<form method="post" action="/interaction/upstream" class="providers" aria-label="Sign in with another account">\n${csrf}\n${buttons}\n</form>`;
}

export function renderInteraction(p: PageInput): string {
  const app = escapeHtml(p.client.name);
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(p.csrf)}">`;
  if (p.stage === 'login') {
    return layout(
      'Sign in',
      `<h1>Sign in</h1>
<p>to continue to <strong>${app}</strong></p>
${errorBlock(p.error)}
<form method="post" action="/interaction/login">
${csrf}
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus${describedBy(p.error)}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${describedBy(p.error)}>
<button type="submit">Sign in</button>
</form>${providerButtons(p.providers, csrf)}`,
    );
  }
  if (p.stage === 'mfa') {
    return layout(
      'Verification code',
      `<h1>Two-step verification</h1>
<p>Enter the 6-digit code from your authenticator app, or one of your backup codes.</p>
${errorBlock(p.error)}
<form method="post" action="/interaction/mfa">
${csrf}
<label for="code">Verification code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="16" required autofocus${describedBy(p.error)}>
<button type="submit">Verify</button>
</form>`,
    );
  }
  const scopes = p.request.scope.split(' ').filter(Boolean);
  return layout(
    'Allow access',
    `<h1>Allow access?</h1>
<p><strong>${app}</strong> asks for access to your account.</p>
${scopes.length ? `<ul aria-label="Requested permissions">${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>` : ''}
${errorBlock(p.error)}
<form method="post" action="/interaction/consent">
${csrf}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}

export function renderError(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p role="alert">${escapeHtml(message)}</p>`);
}

export const STYLESHEET = `:root{color-scheme:light dark;font-family:system-ui,sans-serif}
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}
main{width:min(22rem,90vw);padding:2rem;border:1px solid GrayText;border-radius:.5rem}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin-top:1rem;font-weight:600}
input{display:block;width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem;font-size:1rem}
button{margin-top:1.25rem;padding:.55rem 1.2rem;font-size:1rem;cursor:pointer}
button.secondary{margin-left:.5rem}
.error{color:#b00020;font-weight:600}
.providers{margin-top:1.5rem;padding-top:.5rem;border-top:1px solid GrayText}
.providers button{display:block;width:100%;margin-top:.75rem}
input:focus-visible,button:focus-visible{outline:3px solid Highlight;outline-offset:2px}
`;
