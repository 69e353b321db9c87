// The clock of an event, `c:<instance>:<n>`, as routes validate it and clients check it: one definition of
// the wire format (src/services/events.ts makes and reads them).
export const CLOCK_PATTERN = '^c:[0-9a-z]+:[0-9]+$';
export const CLOCK = new RegExp(CLOCK_PATTERN);
