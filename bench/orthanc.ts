// Orthanc (Debian's `orthanc` and `orthanc-dicomweb` packages) as a second
// server under test, started fresh on loopback for a side-by-side run.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DICOM_MULTIPART, request } from './client.js';
import { freePort } from './target.js';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
/** Orthanc's AE title in the bench (its DICOM port takes C-STORE from any calling AE, Orthanc's default). */
export const ORTHANC_AE = 'ORTHANC';
const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface Orthanc {
  base: string;
  pid: number;
  /** Its DICOM port, for the C-STORE phase. */
  dimsePort: number;
  stop(): Promise<void>;
  log(): string;
}

/** Whether this machine has Orthanc and its DICOMweb plugin (apt install orthanc orthanc-dicomweb). */
export function orthancInstalled(): boolean {
  return existsSync(ORTHANC_BIN) && existsSync(DICOMWEB_PLUGIN);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Starts Orthanc with a fresh storage folder and its defaults otherwise
 * (no authentication, remote access refused, its DICOM port on a free port
 * taking C-STORE from any AE), and waits for its DICOMweb root to answer.
 */
export async function startOrthanc(timeoutMs = 60_000): Promise<Orthanc> {
  const dir = mkdtempSync(path.join(tmpdir(), 'orthanc-bench-'));
  const port = await freePort();
  const dimsePort = await freePort();
  const config = path.join(dir, 'orthanc.json');
  writeFileSync(
    config,
    JSON.stringify({
      Name: 'bench',
      StorageDirectory: path.join(dir, 'db'),
      IndexDirectory: path.join(dir, 'db'),
      HttpPort: port,
      DicomServerEnabled: true,
      DicomAet: ORTHANC_AE,
      DicomPort: dimsePort,
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      Plugins: [DICOMWEB_PLUGIN],
      DicomWeb: { Enable: true, Root: '/dicom-web/' },
    }),
  );
  const child: ChildProcess = spawn(ORTHANC_BIN, [config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString('utf8')).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  process.on('exit', () => {
    if (exited === undefined) child.kill('SIGTERM');
  });
  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === undefined; i++) await sleep(100);
      if (exited === undefined) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}/dicom-web`;
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`Orthanc exited early (code ${exited}):\n${out}`);
    }
    try {
      const r = await request('GET', `${base}/studies/1.2.3`, { Accept: DICOM_MULTIPART }, undefined, false, 2000);
      if (r.status === 404 || r.status === 200) return { base, pid: child.pid ?? 0, dimsePort, stop, log: () => out };
    } catch {
      /* not listening yet */
    }
    await sleep(250);
  }
  await stop();
  throw new Error(`Orthanc did not answer on ${base} within ${timeoutMs} ms:\n${out}`);
}
