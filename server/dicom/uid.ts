// PS3.5 §9.1: UIDs are dot-separated numeric components without leading
// zeros, at most 64 characters.
const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && UID.test(uid);
}
