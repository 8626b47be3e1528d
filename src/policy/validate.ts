import { isPortcullisError } from '../lib/errors.js';
import { loadPolicyBundle, type LoadOptions, type PolicyBundle } from './load.js';
import { shadowedRoutes } from './route_shadowing.js';

export interface ValidationReport {
  bundle: PolicyBundle | undefined;
  /** One line each, `file:line:col message` where a position is known. */
  problems: string[];
}

/** Everything the server checks at load, plus authoring mistakes it tolerates (shadowed routes). */
export function validatePolicyFolder(dir: string, options: LoadOptions = {}): ValidationReport {
  try {
    const bundle = loadPolicyBundle(dir, options);
    return { bundle, problems: shadowedRoutes(bundle.routes) };
  } catch (err) {
    if (!isPortcullisError(err)) throw err;
    return { bundle: undefined, problems: err.message.split('\n').filter(Boolean) };
  }
}
