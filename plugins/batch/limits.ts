// Defaults the batch plugin's schema and its CLI share (the CLI must not load the plugin to know them).
export const DEFAULT_MAX_ITEMS = 100_000;
