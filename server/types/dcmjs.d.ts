// dcmjs ships no type declarations; Cairn touches it only inside server/dicom/
// (and in test/bench/conformance fixtures builders), so a loose module type is enough.
declare module 'dcmjs' {
  const dcmjs: any;
  export default dcmjs;
}
