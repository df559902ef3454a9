// The benchmark's pipeline: one execution type whose handler does nothing but say it started.
// `bench.ping` events require one noop job (the latency path: event → decision → job →
// handler); the throughput section enqueues noop jobs through the gateway directly.
export default {
  name: 'bench',
  jobTypes: { noop: { maxAttempts: 3, timeoutSeconds: 60 } },
  authority(entity) {
    const ping = entity.events.some((e) => e.kind === 'bench.ping');
    const done = entity.events.some((e) => e.kind === 'noop.succeeded');
    return ping && !done ? { required: [{ type: 'noop' }] } : { done: true };
  },
  handlers: {
    async noop(ctx) {
      globalThis.__canonBenchStarted?.(ctx.entity.id, performance.now());
      return null;
    },
  },
};
