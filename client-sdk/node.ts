/** fedge/client/node — Node-only companions of fedge/client: the file-backed privacy ledger, tfjs WASM paths. */
export { FileLedgerStore } from './privacy/file-ledger-store.ts';
export { useNodeWasm } from './training/node-backend.ts';
