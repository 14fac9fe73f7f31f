import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Two files at a time on two cores (vitest's default is one fewer than the cores): most
    // tests wait on real processes, sockets and timers, not on the CPU (241 s → 134 s).
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
