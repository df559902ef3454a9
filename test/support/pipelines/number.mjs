// a module whose default export is not a pipeline at all
export default 42;
