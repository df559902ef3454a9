export default [{ name: 'x' }];
