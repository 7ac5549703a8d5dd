import { secretInDataDir } from '../secret-file.js';
import { createHmac } from 'node:crypto';
import { permits, ROLES, type Caller, type DeidChoice, type Principal, type Role } from '../access.js';
import type { DeidConfig } from '../config.js';
import type { Db } from '../db/knex.js';
import type { Match } from '../db/search.js';
import type { DicomJson } from '../dicom/json.js';
import type { AttributeView, Presenter } from '../present.js';
import { Deidentifier } from './profile.js';

const PATIENT_ID = '00100020';
import { parseProfile } from './settings.js';

// De-identified views by role: which view a caller gets, the attributes seam's
// view for it (server/present.ts), and the table of pseudonymous UIDs shown,
// so that a caller's follow-up request by a pseudonymous UID resolves.

/** A caller's de-identified view: the project its pseudonyms belong to, and the profile bound to the project's key. */
export interface DeidView {
  readonly project: string;
  readonly deidentifier: Deidentifier;
}

/** The UIDs that place an instance in URLs and in QIDO keys. */
const PLACING = ['0020000D', '0020000E', '00080018'] as const;

/** The most pseudonyms a process remembers as already written before it forgets them all and starts again. */
const REMEMBERED = 200_000;

export class Research {
  private readonly views = new Map<string, DeidView>();
  /** Pseudonymous → original UIDs shown during a call, written before its answer leaves. */
  private readonly shown = new WeakMap<Caller, Map<string, { project: string; original: string }>>();
  private readonly written = new Set<string>();
  /** Views chosen by name (a collection's, a token's `deid` claim), by project and profile. */
  private readonly named = new Map<string, DeidView>();

  constructor(
    config: DeidConfig,
    private readonly secret: string,
  ) {
    for (const v of config.views) this.views.set(v.role, { project: v.project, deidentifier: new Deidentifier(this.keyOf(v.project), v.options) });
  }

  /** Each project's key is derived from the one secret, so two projects' pseudonyms cannot be linked without it. */
  private keyOf(project: string): Buffer {
    return createHmac('sha256', this.secret).update(`cairn-deid-project:${project}`).digest();
  }

  /** The view of a profile (its options as text) in a project, made once. */
  viewNamed(choice: Required<DeidChoice>): DeidView {
    const id = `${choice.project}|${choice.profile}`;
    let view = this.named.get(id);
    if (!view) {
      const parsed = parseProfile(choice.profile);
      if ('problem' in parsed) throw new Error(`profile "${choice.profile}": ${parsed.problem}`);
      if (this.named.size >= 1000) this.named.clear();
      this.named.set(id, (view = { project: choice.project, deidentifier: new Deidentifier(this.keyOf(choice.project), parsed.options) }));
    }
    return view;
  }

  /**
   * A token's `deid` claim: what it does not name comes from the caller's
   * role view, else the out-of-the-box profile (modified dates) and the
   * project "default".
   */
  private viewClaimed(claim: DeidChoice, caller: Caller): DeidView {
    const role = caller.principal.roles.map((r) => this.views.get(r)).find((v) => v !== undefined);
    return this.viewNamed({
      project: claim.project ?? role?.project ?? 'default',
      profile: claim.profile ?? (role ? profileText(role) : 'modified-dates'),
    });
  }

  /**
   * The view a caller gets: none when one of its roles reads patient data
   * without a view (a clinician who is also a researcher sees what a
   * clinician sees); otherwise the view of its first role that has one.
   */
  viewOf(caller: Caller): DeidView | undefined {
    // Through a collection, always the collection's view; a credential that names a view gets it, whatever its roles.
    if (caller.collection) return this.viewNamed(caller.collection.deid);
    if (caller.principal.deid) return this.viewClaimed(caller.principal.deid, caller);
    const p = caller.principal;
    if (p.roles.some((r) => !this.views.has(r) && readsData(r))) return undefined;
    for (const r of p.roles) {
      const v = this.views.get(r);
      if (v) return v;
    }
    return undefined;
  }

  /**
   * QIDO matches for `caller` on what its view shows. Under the Modified
   * Dates option a date key is matched on the shifted date: the shift is per
   * patient, so one shifted range is no single stored range, and the index
   * evaluates each patient's keyed shift itself (server/db/search.ts, 'shifted').
   * Keys its view removes or replaces never reach here: the pseudonym
   * middleware answers them with no match (server/deid/pseudonyms.ts).
   */
  searchMatches(caller: Caller, matches: Match[]): Match[] {
    const view = this.viewOf(caller);
    if (!view) return matches;
    const d = view.deidentifier;
    return matches.map((m) =>
      m.cond.op === 'range' && !m.tag.includes('.') && d.matchingOf(m.tag) === 'shifted'
        ? { tag: m.tag, cond: { op: 'shifted', from: m.cond.from, to: m.cond.to, key: d.shiftKey() } }
        : m,
    );
  }

  /** The attributes seam's view (server/present.ts) for each caller. */
  readonly presenter: Presenter = (caller) => {
    const view = this.viewOf(caller);
    if (!view) return undefined;
    const attributeView: AttributeView = (attrs, _set, study) => {
      this.note(caller, view, attrs);
      return withUrlsMapped(view.deidentifier.apply(attrs, study), view.deidentifier);
    };
    return attributeView;
  };

  /**
   * Notes the pseudonyms `attrs` are shown under to `caller`: those of its
   * placing UIDs, and its patient's pseudonym (for queries by it).
   */
  note(caller: Caller, view: DeidView, attrs: DicomJson | { studyUid?: string; seriesUid?: string; sopInstanceUid?: string }): void {
    const d = view.deidentifier;
    const placing = 'studyUid' in attrs || 'seriesUid' in attrs || 'sopInstanceUid' in attrs;
    const pairs: [pseudo: string, original: unknown][] = [];
    if (!d.options.retainUids) {
      const uids = placing ? [attrs.studyUid, attrs.seriesUid, attrs.sopInstanceUid] : PLACING.map((t) => (attrs as DicomJson)[t]?.Value?.[0]);
      for (const original of uids) if (typeof original === 'string' && original) pairs.push([d.uid(original), original]);
    }
    // A patient with an ID is shown under one pseudonym in Patient ID and Patient Name (profile.ts): remembered as the original ID.
    const patientId = placing ? undefined : (attrs as DicomJson)[PATIENT_ID]?.Value?.[0];
    if (typeof patientId === 'string' && patientId) pairs.push([d.patientPseudonym(attrs as DicomJson), patientId]);
    let shown = this.shown.get(caller);
    for (const [pseudo, original] of pairs) {
      if (typeof original !== 'string' || this.written.has(`${view.project}|${pseudo}`)) continue;
      if (!shown) this.shown.set(caller, (shown = new Map()));
      shown.set(pseudo, { project: view.project, original });
    }
  }

  /** Writes the pseudonyms `caller` was shown that are not yet in the table; runs before the answer is sent. */
  async flush(db: Db, caller: Caller): Promise<void> {
    const shown = this.shown.get(caller);
    if (!shown?.size) return;
    this.shown.delete(caller);
    const rows = [...shown].map(([pseudo, { project, original }]) => ({ project, pseudo_uid: pseudo, original_uid: original }));
    for (let i = 0; i < rows.length; i += 1000)
      await db('deid_uids')
        .insert(rows.slice(i, i + 1000))
        .onConflict(['project', 'pseudo_uid'])
        .ignore();
    if (this.written.size > REMEMBERED) this.written.clear();
    for (const r of rows) this.written.add(`${r.project}|${r.pseudo_uid}`);
  }

  /** The original Patient ID a patient pseudonym stands for in `view`, or undefined when it was never shown. */
  async originalPatientId(db: Db, view: DeidView, pseudo: string): Promise<string | undefined> {
    // Patient pseudonyms start with P; a UID never does, so the two share the table without clashing.
    if (!/^P[0-9A-F]{16}$/.test(pseudo)) return undefined;
    const row = await db('deid_uids').where({ project: view.project, pseudo_uid: pseudo }).first('original_uid');
    return row?.original_uid;
  }

  /** The original UID a pseudonymous one stands for in `view`, or undefined when it was never shown. */
  async original(db: Db, view: DeidView, pseudo: string): Promise<string | undefined> {
    if (view.deidentifier.options.retainUids) return pseudo;
    const row = await db('deid_uids').where({ project: view.project, pseudo_uid: pseudo }).first('original_uid');
    return row?.original_uid;
  }
}

const OPTION_NAMES: Record<string, (o: Deidentifier['options']) => boolean> = {
  'retain-uids': (o) => o.retainUids === true,
  'retain-device-identity': (o) => o.retainDeviceIdentity === true,
  'retain-institution-identity': (o) => o.retainInstitutionIdentity === true,
  'retain-patient-characteristics': (o) => o.retainPatientCharacteristics === true,
  'full-dates': (o) => o.retainLongitudinal === 'full',
  'modified-dates': (o) => o.retainLongitudinal === 'modified',
  'clean-descriptors': (o) => o.cleanDescriptors === true,
  'clean-structured-content': (o) => o.cleanStructuredContent === true,
  'clean-graphics': (o) => o.cleanGraphics === true,
  'allow-burned-in': (o) => o.allowBurnedIn === true,
};

/** A role view's options as the text a profile is named by (its safe private list is not carried over). */
function profileText(view: DeidView): string {
  const names = Object.entries(OPTION_NAMES)
    .filter(([, has]) => has(view.deidentifier.options))
    .map(([n]) => n);
  return names.length ? names.join(',') : 'basic';
}

function readsData(role: string): boolean {
  if (!(ROLES as readonly string[]).includes(role)) return false;
  const p: Principal = { sub: '', roles: [role as Role], clearances: [] };
  return permits(p, 'search') || permits(p, 'retrieve');
}

/**
 * URLs that carry UIDs in their path (Retrieve URL, BulkDataURI) point at the
 * pseudonymous resources: every UID after studies/, series/ or instances/ is
 * replaced, at any depth.
 */
function withUrlsMapped(attrs: DicomJson, d: Deidentifier): DicomJson {
  for (const [tag, attr] of Object.entries(attrs)) {
    if (attr.BulkDataURI !== undefined) attr.BulkDataURI = mapUrl(attr.BulkDataURI, d);
    if (tag === '00081190' && attr.Value) attr.Value = attr.Value.map((v) => (typeof v === 'string' ? mapUrl(v, d) : v));
    if (attr.vr === 'SQ' && attr.Value) for (const item of attr.Value) if (item) withUrlsMapped(item as DicomJson, d);
  }
  return attrs;
}

function mapUrl(url: string, d: Deidentifier): string {
  return url.replace(/(\/(?:studies|series|instances)\/)([0-9.]+)/g, (_, at: string, uid: string) => at + d.uid(uid));
}

/** The secret project keys derive from: DEID_KEY, or one Cairn generates once in the data folder. */
export function deidSecret(config: DeidConfig, dataDir: string): string {
  if (config.key) return config.key;
  return secretInDataDir(dataDir, 'deid-secret');
}
