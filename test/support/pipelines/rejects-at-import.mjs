// top-level await that rejects with something that is not an Error
await Promise.reject('the secrets vault is sealed');
export default {};
