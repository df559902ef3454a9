// a TypeScript module (loaded through tsx) that throws a plain object at import
const reason: unknown = { code: 42, why: 'not an Error' };
if (reason) throw reason;
export default {};
