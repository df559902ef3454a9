// Handlers that return what JSON cannot hold, or throw things that are not Errors, chosen by
// the document's content; the authority throws a string for "#authority-string".
const huge = () => 'x'.repeat(9 * 1024 * 1024);
const circular = () => {
  const o = { a: 1 };
  o.self = o;
  return o;
};
const values = {
  '#circular': circular,
  '#function': () => () => 1,
  '#symbol': () => Symbol('nope'),
  '#nul': () => ({ text: 'a\u0000b' }),
  '#huge': () => ({ text: huge() }),
};
const throwsValues = {
  '#throw-string': 'a plain string',
  '#throw-undefined': undefined,
  '#throw-object': { code: 7 },
  '#throw-number': 42,
};
const content = (e) => e.events.find((x) => x.kind === 'document.created')?.payload?.content;
export default {
  name: 'badvalues',
  // the breaker would open after ten failures in a row and hold the rest: not what this fixture tests
  jobTypes: {
    protect: {
      maxAttempts: 2,
      timeoutSeconds: 10,
      backoff: { baseSeconds: 0, maxSeconds: 0 },
      breaker: { threshold: 1000 },
    },
  },
  authority: (e) => {
    if (content(e) === '#authority-string') throw 'authority says no';
    return e.events.some((x) => x.kind.startsWith('protect.')) ? { done: true } : { required: [{ type: 'protect' }] };
  },
  handlers: {
    protect: async (ctx) => {
      const c = content(ctx.entity);
      if (c in values) return values[c]();
      if (c in throwsValues) throw throwsValues[c];
      return { ok: true };
    },
  },
};
