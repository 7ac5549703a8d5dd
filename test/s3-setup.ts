import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import type { TestProject } from 'vitest/node';

// The s3 test project: one real S3-protocol server (s3rver, in this process,
// on loopback) for the whole run; every test archive gets a bucket of its own.
export interface TestS3 {
  endPoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    s3?: TestS3;
  }
}

/** Starts an s3rver on a free loopback port over `dir` (its default credentials are S3RVER/S3RVER). */
export async function startS3rver(dir: string): Promise<{ s3: TestS3; stop(): Promise<void> }> {
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir });
  const addr = await server.run();
  return {
    s3: { endPoint: '127.0.0.1', port: addr.port, accessKey: 'S3RVER', secretKey: 'S3RVER' },
    stop: () => server.close(),
  };
}

export default async function setup(project: TestProject) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-test-s3-'));
  const s = await startS3rver(dir);
  project.provide('s3', s.s3);
  return async () => {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
