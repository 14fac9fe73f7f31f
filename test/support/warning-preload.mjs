// Preloaded into a built command by test/observability/json-output.test.ts
// (NODE_OPTIONS=--import): on SIGUSR2 the process meets two of Node's own warnings — a
// timer set with a negative delay (the TimeoutNegativeWarning of issue 16) and a
// deprecation — as the product would, without a hook in the product.
process.on('SIGUSR2', () => {
  setTimeout(() => {}, -5);
  process.emitWarning('warning-preload: an old API was used', 'DeprecationWarning', 'DEP9999');
});
