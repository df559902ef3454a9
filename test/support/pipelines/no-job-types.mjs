export default { name: 'shapes', jobTypes: {}, authority: () => ({ done: true }), handlers: {} };
