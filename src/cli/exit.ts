/** Exit codes: 2 for a bad config or usage, 3 for "not running" (as LSB status scripts use). */
export const EXIT = { ok: 0, failure: 1, usage: 2, notRunning: 3 } as const;
