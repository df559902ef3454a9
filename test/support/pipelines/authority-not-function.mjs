export default {
  name: 'shapes',
  jobTypes: { protect: {} },
  authority: 'decide everything',
  handlers: { protect: async () => ({}) },
};
