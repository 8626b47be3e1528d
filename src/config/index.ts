export { CONFIG_ENV_VARS, loadConfig, parseConfig, type LoadConfigOptions } from './load.js';
export { configReferenceMarkdown } from './reference.js';
export { configSchema, configJsonSchema, ALLOWED_ALGORITHMS, type Config, type ConfigInput, type IssuerConfig, type UpstreamProviderConfig } from './schema.js';
export { redactConfig, redactUrlPassword } from './redact.js';
