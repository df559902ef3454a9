// The dashboard's keys, for its help screen and for `canon watch --help`. Kept free of React
// and Ink so the command can list them without loading either.
export const KEYS: [string, string][] = [
  ['↑/↓  k/j', 'move; PgUp/PgDn a page, g/G top and bottom'],
  ['Enter', 'drill in: a job type → its jobs; a job or failure → the job and its trace'],
  ['Esc', 'back'],
  ['/', 'find an entity by id and show its trace'],
  ['r', 'retry the selected dead job (through the gateway; recorded)'],
  ['c', 'cancel the selected job (a dead one is acknowledged)'],
  ['R', 'retry every dead job of the selected type (shows the count first)'],
  ['P', 'pause or resume the selected job type'],
  ['K', 'kill the selected flag (holds the queued jobs it allowed)'],
  ['p', 'pause or resume refreshing'],
  ['?', 'this help'],
  ['q  Ctrl-C', 'quit'],
];
