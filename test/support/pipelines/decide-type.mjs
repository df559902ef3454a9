// "decide" is canon's own decision type
export default {
  name: 'shapes',
  jobTypes: { decide: {} },
  authority: () => ({ done: true }),
  handlers: { decide: async () => ({}) },
};
