import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cedar, describeCedarErrors } from './cedar.js';

export interface FormatReport {
  /** Files whose formatting differs (rewritten unless checking). */
  changed: string[];
  errors: string[];
}

/** Formats every `.cedar` file of a folder with cedar-wasm's formatter (comments are kept). */
export function formatPolicyFolder(dir: string, { check }: { check: boolean }): FormatReport {
  const report: FormatReport = { changed: [], errors: [] };
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.cedar')).sort()) {
    const file = join(dir, name);
    const text = readFileSync(file, 'utf8');
    const answer = cedar.formatPolicies({ policyText: text, lineWidth: 100, indentWidth: 2 });
    if (answer.type === 'failure') {
      report.errors.push(...describeCedarErrors(name, text, answer.errors));
      continue;
    }
    if (answer.formatted_policy !== text) {
      report.changed.push(name);
      if (!check) writeFileSync(file, answer.formatted_policy);
    }
  }
  return report;
}
