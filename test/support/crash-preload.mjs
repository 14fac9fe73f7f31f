// Preloaded into the built agent by test/agent/crash.test.ts (NODE_OPTIONS=--import):
// on SIGUSR2 the process meets what rule 22 is about — an exception thrown in a
// callback, a promise rejected with no handler, and a late 'error' event on a
// listening server (as an EMFILE on accept gives) — without a hook in the product.
import net from 'node:net';

const servers = [];
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  servers.push(this);
  return listen.apply(this, args);
};

process.on('SIGUSR2', () => {
  setImmediate(() => {
    throw new Error('crash-preload: an exception in a callback');
  });
  void Promise.reject(new Error('crash-preload: a rejection nobody handles'));
  const accept = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', errno: -24, syscall: 'accept' });
  for (const server of servers) if (server.listening) server.emit('error', accept);
});
