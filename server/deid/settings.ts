import type { ProfileOptions, SafePrivate } from './profile.js';

// DEID_VIEWS: which roles get which de-identified view, as
//   role[@project]=option,option;role[@project]=…
// e.g. `researcher=modified-dates` (the default) or
// `researcher@trial-7=full-dates,retain-patient-characteristics`.
// The project names the key the view's pseudonyms and date shifts come from
// (the role's name when not given): two roles of one project see the same
// pseudonyms, two projects cannot be linked. DEID_SAFE_PRIVATE lists the
// private elements the retain-safe-private option keeps, as
// `gggg,xx,creator;…` (xx is the element's low byte).

/** One role's de-identified view as configured. */
export interface DeidViewSetting {
  readonly role: string;
  readonly project: string;
  readonly options: ProfileOptions;
}

const FLAGS: Record<string, (o: Mutable<ProfileOptions>) => void> = {
  basic: () => undefined,
  'retain-uids': (o) => {
    o.retainUids = true;
  },
  'retain-device-identity': (o) => {
    o.retainDeviceIdentity = true;
  },
  'retain-institution-identity': (o) => {
    o.retainInstitutionIdentity = true;
  },
  'retain-patient-characteristics': (o) => {
    o.retainPatientCharacteristics = true;
  },
  'full-dates': (o) => {
    o.retainLongitudinal = 'full';
  },
  'modified-dates': (o) => {
    o.retainLongitudinal = 'modified';
  },
  'clean-descriptors': (o) => {
    o.cleanDescriptors = true;
  },
  'clean-structured-content': (o) => {
    o.cleanStructuredContent = true;
  },
  'clean-graphics': (o) => {
    o.cleanGraphics = true;
  },
  'allow-burned-in': (o) => {
    o.allowBurnedIn = true;
  },
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The views DEID_VIEWS configures; throws on anything it does not understand. */
export function parseDeidViews(text: string, safePrivateText: string | undefined): DeidViewSetting[] {
  const safe = parseSafePrivate(safePrivateText ?? '');
  const out: DeidViewSetting[] = [];
  for (const entry of text
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const m = /^([a-z][a-z0-9_-]*)(?:@([A-Za-z0-9][A-Za-z0-9_.-]{0,63}))?=(.*)$/.exec(entry);
    if (!m) throw new Error(`DEID_VIEWS: "${entry}" is not role[@project]=option,option`);
    const [, role, project, list] = m;
    if (out.some((v) => v.role === role)) throw new Error(`DEID_VIEWS: role "${role}" has two views`);
    const options: Mutable<ProfileOptions> = {};
    for (const name of list
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean)) {
      if (name === 'retain-safe-private') {
        options.retainSafePrivate = safe;
        continue;
      }
      const set = FLAGS[name];
      if (!set) throw new Error(`DEID_VIEWS: unknown option "${name}" (known: ${[...Object.keys(FLAGS), 'retain-safe-private'].join(', ')})`);
      set(options);
    }
    if (list.includes('full-dates') && list.includes('modified-dates')) throw new Error(`DEID_VIEWS: "${entry}" names both full-dates and modified-dates`);
    out.push({ role, project: project ?? role, options: Object.freeze(options) });
  }
  return out;
}

function parseSafePrivate(text: string): SafePrivate[] {
  return text
    .split(';')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^([0-9A-Fa-f]{3}[13579BDFbdf]),([0-9A-Fa-f]{2}),(.+)$/.exec(entry);
      if (!m) throw new Error(`DEID_SAFE_PRIVATE: "${entry}" is not gggg,xx,creator with an odd group`);
      return { group: m[1].toUpperCase(), element: m[2].toUpperCase(), creator: m[3].trim() };
    });
}

/** A project name (the key of its pseudonyms), as DEID_VIEWS writes it after `@`. */
export const PROJECT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A profile named by its options alone (`modified-dates,clean-descriptors`),
 * as a collection or a token's `deid` claim names it; undefined with the
 * reason when it is not one. The Retain Safe Private option is not offered
 * there: its safe list belongs to the views DEID_SAFE_PRIVATE configures.
 */
export function parseProfile(text: string): { options: ProfileOptions } | { problem: string } {
  if (/retain-safe-private/.test(text)) return { problem: 'the retain-safe-private option is offered only to the views of DEID_VIEWS' };
  try {
    const [view] = parseDeidViews(`p=${text}`, undefined);
    return { options: view.options };
  } catch (err) {
    return { problem: (err as Error).message.replace(/^DEID_VIEWS: /, '').replace('"p=', '"') };
  }
}

/** The option names a profile may be made of, for messages and documentation. */
export const PROFILE_OPTIONS: readonly string[] = Object.keys(FLAGS);
