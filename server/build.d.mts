// Types of build.mjs, a plain JavaScript module (it runs before anything is built).
export const ROOT: string;
export const DIST_MAIN: string;
export function buildServer(outdir?: string): Promise<void>;
