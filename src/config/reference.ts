import { configJsonSchema } from './schema.js';

interface JsonSchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchemaNode>;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
  required?: string[];
}

/** The configuration reference as a Markdown table, generated from the schema (the README embeds it). */
export function configReferenceMarkdown(): string {
  const rows: string[] = ['| key | default | description |', '| --- | --- | --- |'];
  walk(configJsonSchema() as JsonSchemaNode, '', rows);
  return rows.join('\n');
}

function walk(node: JsonSchemaNode, prefix: string, rows: string[]): void {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const isList = child.type === 'array' && child.items?.properties;
    const isSection = child.type === 'object' && child.properties;
    const required = node.required?.includes(key) ?? false;
    if (!isSection) rows.push(`| \`${path}\` | ${formatDefault(child, required)} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
    else if (child.description) rows.push(`| \`${path}\` | | ${child.description.replace(/\|/g, '\\|')} |`);
    if (isSection) walk(child, path, rows);
    if (isList) walk(child.items!, `${path}[]`, rows);
  }
}

function formatDefault(node: JsonSchemaNode, required: boolean): string {
  if (node.default === undefined) return required ? '(required)' : '(unset)';
  return `\`${JSON.stringify(node.default)}\``;
}
