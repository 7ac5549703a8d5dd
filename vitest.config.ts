import { defineConfig } from 'vitest/config';

// The whole suite runs twice: over the filesystem blob store and over S3
// (a real S3-protocol server started by test/s3-setup.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      { extends: true, test: { name: 'fs', globalSetup: ['test/global-setup.ts'] } },
      { extends: true, test: { name: 's3', globalSetup: ['test/global-setup.ts', 'test/s3-setup.ts'] } },
    ],
  },
});
