import { defineConfig } from 'vitest/config';

// Tests touch the real filesystem as root (chroot, mknod, gcc-built ELF files):
// run files one at a time so temporary ROOTs and timings do not fight over two cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    pool: 'forks',
    // The built tool is imported as Node imports it, so its module hooks (jailfiles
    // importing 'jail') run as they do for any program that embeds make().
    server: { deps: { external: [/\/dist\//] } },
  },
});
