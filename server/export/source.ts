import { newCaller, type Caller, type Role } from '../access.js';
import { findInstances, findMetadata, type StoredInstance } from '../db/lookup.js';
import type { AppDeps } from '../deps.js';
import { deidentifyPart10 } from '../deid/part10.js';
import { withheldReason } from '../deid/profile.js';
import type { DeidView } from '../deid/research.js';
import type { DicomJson } from '../dicom/json.js';
import { ApiError } from '../errors.js';
import type { PartBody } from '../http/multipart.js';
import { SMALL_BLOB } from '../retrieve.js';
import { givenMissing, type NamedTarget } from './targets.js';

// What an export sends, whatever carries it (a zip download, a push to
// another archive): the instances of a set of studies and series that a
// caller may see, each as stored or de-identified by a profile, and the
// attributes that describe each file as sent. A collection is one more
// source of such a set.

type Deps = Pick<AppDeps, 'db' | 'blobs' | 'config' | 'research' | 'presenter'>;

/** One instance to export, with its stored attributes, and why the profile withholds it when it does. */
export interface Planned {
  row: StoredInstance;
  /** The attributes as stored (never sent as such under a profile). */
  stored: DicomJson;
  withheld?: string;
}

/**
 * The instances under `targets` that `caller` may see, once each, in the
 * order of the targets. A target with nothing visible is the same 404 as
 * WADO-RS answers (hidden looks like missing), naming the UID as the caller
 * gave it. Each read notes the UIDs in
 * the caller's audit record.
 */
export async function plan(
  deps: Deps,
  caller: Caller,
  targets: readonly NamedTarget[],
  view: DeidView | undefined,
  opts: { skipMissing?: boolean } = {},
): Promise<Planned[]> {
  const out: Planned[] = [];
  const seen = new Set<string>();
  for (const { target: t, given } of targets) {
    const rows = await findInstances(deps.db, caller, t);
    // A collection's member the caller cannot see (a labelled study, a study deleted since) is left out, not an error.
    if (!rows.length && opts.skipMissing) continue;
    if (!rows.length) throw givenMissing(given);
    const metadata = new Map<string, DicomJson>();
    for (const text of await findMetadata(deps.db, caller, t)) {
      const attrs = JSON.parse(text) as DicomJson;
      metadata.set(String(attrs['00080018']?.Value?.[0]), attrs);
    }
    for (const row of rows) {
      if (seen.has(row.sopInstanceUid)) continue;
      seen.add(row.sopInstanceUid);
      const stored = metadata.get(row.sopInstanceUid) ?? {};
      const withheld = view ? withheldReason(stored, view.deidentifier.options) : undefined;
      out.push({ row, stored, ...(withheld ? { withheld } : {}) });
    }
  }
  return out;
}

/**
 * An instance's bytes as exported: the stored Part-10 file (streamed when
 * large), or, under a profile, the file de-identified by it, exactly as
 * WADO-RS sends it to a caller of that view with `transfer-syntax=*`.
 * Throws WithheldError (server/deid/part10.ts) for an instance the profile
 * withholds: callers check withheldReason first.
 */
export async function exportedBytes(deps: Deps, view: DeidView | undefined, row: StoredInstance): Promise<PartBody> {
  if (!view) return row.size <= SMALL_BLOB ? deps.blobs.read(row.blobKey, row.size) : deps.blobs.get(row.blobKey);
  return deidentifyPart10(await deps.blobs.read(row.blobKey, row.size), view.deidentifier, {
    bulkThreshold: deps.config.bulkDataThreshold,
    maxHeaderBytes: deps.config.maxHeaderBytes,
    maxSequenceDepth: deps.config.maxSequenceDepth,
    maxDataElements: deps.config.maxDataElements,
  });
}

/** The UID an instance is sent under: its pseudonym under a profile that replaces UIDs. */
export function sentUid(view: DeidView | undefined, uid: string): string {
  return view ? view.deidentifier.uid(uid) : uid;
}

/**
 * A configured de-identification profile by name: the view DEID_VIEWS gives
 * the role of that name (server/deid/settings.ts), with its project's key,
 * so an export by profile sends the same pseudonyms that role is shown.
 * Throws 400 for a name that is not configured.
 */
export function profileView(deps: Pick<AppDeps, 'config' | 'research'>, name: string): DeidView {
  const setting = deps.config.deid.views.find((v) => v.role === name);
  const view = setting && deps.research?.viewOf(profileCaller(name));
  if (!view) {
    const known = deps.research ? deps.config.deid.views.map((v) => v.role) : [];
    throw new ApiError(
      400,
      'UnknownProfile',
      `"${name}" is not a configured de-identification profile (${known.length ? `known: ${known.join(', ')}` : 'none is configured'})`,
    );
  }
  return view;
}

/** The name of the profile a view is configured under (its role in DEID_VIEWS). */
export function profileName(deps: Pick<AppDeps, 'config' | 'research'>, view: DeidView): string | undefined {
  return deps.config.deid.views.find((v) => deps.research?.viewOf(profileCaller(v.role)) === view)?.role;
}

function profileCaller(role: string): Caller {
  // A role named only in DEID_VIEWS holds a view and no other grant; Research looks it up by name.
  return newCaller({ sub: '', roles: [role as Role], clearances: [] }, { protocol: 'cli', command: 'export' });
}
