/**
 * A connection URL fit for logs, messages and `config check`: the password (and a `password`
 * query parameter) shown as `[redacted]`, everything else kept so the operator still sees which
 * server and database are meant.
 */
export function redactUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not parseable: show nothing of it rather than risk printing a secret.
    return '[redacted]';
  }
  const mark = 'PORTCULLIS-REDACTED';
  if (url.password) url.password = mark;
  if (url.searchParams.has('password')) url.searchParams.set('password', mark);
  return url.toString().replaceAll(mark, '[redacted]');
}
