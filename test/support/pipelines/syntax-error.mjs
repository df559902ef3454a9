export default { name: 'broken', jobTypes: { protect: {} }, authority: () => ({ done: true }) handlers: {} };
