import { configDefaults, defineConfig } from 'vitest/config';

// Two projects over the same test files: fs (the filesystem blob store) and
// s3 (a real S3-protocol server started by test/s3-setup.ts). The s3 one
// leaves out the files that never touch a blob (parsing, tokens, logins,
// operator commands), which would only run the same code twice, and the
// browser tests, which read through the same API the s3 project covers.
const blobFree = [
  'test/e2e/**',
  'test/dicom/**',
  'test/auth/**',
  'test/cli.test.ts',
  'test/config.test.ts',
  'test/http-multipart.test.ts',
  'test/dicomweb/qido-params.test.ts',
  'test/audit-syslog.test.ts',
  'test/embedded-pg.test.ts',
  'test/global-setup-report.test.ts',
  'test/client-text.test.ts',
  'test/exit-code.test.ts',
  'test/pixels/**',
  'test/dimse/ae-cli.test.ts',
  'test/dimse/aes-api.test.ts',
];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    projects: [
      { extends: true, test: { name: 'fs', globalSetup: ['test/global-setup.ts'] } },
      { extends: true, test: { name: 's3', globalSetup: ['test/global-setup.ts', 'test/s3-setup.ts'], exclude: [...configDefaults.exclude, ...blobFree] } },
    ],
  },
});
