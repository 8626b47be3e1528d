/** JSON kept as text columns (SQLite and PostgreSQL alike). */
export const json = {
  write: (value: unknown): string => JSON.stringify(value),
  read: <T>(text: string | null): T => (text === null ? null : JSON.parse(text)) as T,
};
