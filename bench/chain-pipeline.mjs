// The chain benchmark's pipeline: three execution steps one after the other, each required by
// the authority once the step before it has succeeded, and a final "done" after step3. The
// handlers do nothing, so what is measured is canon's own path: decide → step1 → decide →
// step2 → decide → step3 → decide (done). A benchmark that times the path may set
// globalThis.__canonBenchStarted (step1's handler started) and __canonBenchFinished (step3's).
const STEPS = ['step1', 'step2', 'step3'];

export default {
  name: 'chain',
  jobTypes: {
    step1: { maxAttempts: 3, timeoutSeconds: 60 },
    step2: { maxAttempts: 3, timeoutSeconds: 60 },
    step3: { maxAttempts: 3, timeoutSeconds: 60 },
  },
  authority(entity) {
    const kinds = new Set(entity.events.map((e) => e.kind));
    if (!kinds.has('chain.start')) return { done: true };
    const next = STEPS.find((s) => !kinds.has(`${s}.succeeded`));
    return next ? { required: [{ type: next }] } : { done: true };
  },
  handlers: {
    async step1(ctx) {
      globalThis.__canonBenchStarted?.(ctx.entity.id, performance.now());
      return null;
    },
    async step2() {
      return null;
    },
    async step3(ctx) {
      globalThis.__canonBenchFinished?.(ctx.entity.id, performance.now());
      return null;
    },
  },
};
