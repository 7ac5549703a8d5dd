// dcmjs ships no types. Shorthand ambient declaration (every import is `any`); it coexists
// with server/types/dcmjs.d.ts when both are in one compilation.
declare module 'dcmjs';
