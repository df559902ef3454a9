// Runs many canon command lines in one Node process, each through the binary's own main()
// (bin/canon is a shim around it), capturing what each writes to stdout and stderr, so the
// bad-input test can try hundreds of inputs without paying Node's start-up for each. An
// uncaught exception or unhandled rejection is recorded against the case that caused it.
// Input (stdin): [{ args: string[], env: {} }]; output (stdout, at the end): [{ code, stdout, stderr }].
import { main } from '../../dist/src/cli.js';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const realOut = process.stdout.write.bind(process.stdout);
const realErr = process.stderr.write.bind(process.stderr);
let current = null;
const capture = (key) => (chunk, enc, cb) => {
  if (current) current[key] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
  const done = typeof enc === 'function' ? enc : cb;
  if (typeof done === 'function') done();
  return true;
};
process.on('uncaughtException', (e) => {
  if (current) current.stderr += `\nUNCAUGHT ${e?.stack ?? e}`;
});
process.on('unhandledRejection', (e) => {
  if (current) current.stderr += `\nUNHANDLED ${e?.stack ?? e}`;
});

const results = [];
const baseEnv = { ...process.env };
for (const c of cases) {
  current = { code: null, stdout: '', stderr: '' };
  process.env = { ...baseEnv, ...c.env };
  process.stdout.write = capture('stdout');
  process.stderr.write = capture('stderr');
  // main() adds process-wide listeners meant for one command per process: take them off again
  const before = new Map(['stdout', 'stderr'].map((k) => [k, new Set(process[k].listeners('error'))]));
  const t0 = Date.now();
  let timer;
  try {
    // the timer also keeps the event loop alive while a command waits on nothing
    current.code = await Promise.race([
      main(['node', 'canon', ...c.args]),
      new Promise((r) => (timer = setTimeout(() => r('timeout'), c.timeoutMs ?? 20000))),
    ]);
  } catch (e) {
    current.stderr += `\nTHREW ${e?.stack ?? e}`;
  } finally {
    clearTimeout(timer);
  }
  current.ms = Date.now() - t0;
  for (const [k, had] of before)
    for (const l of process[k].listeners('error')) if (!had.has(l)) process[k].removeListener('error', l);
  // let stray writes of this case land on it, not the next
  await new Promise((r) => setTimeout(r, 5));
  process.stdout.write = realOut;
  process.stderr.write = realErr;
  results.push(current);
  current = null;
}
realOut(JSON.stringify(results), () => process.exit(0));
