/**
 * fedge/client — what web apps embed: Trainer (on-device fine-tuning with DP-SGD), the privacy ledger (memory,
 * IndexedDB) and Participant (joins federated tasks). EdgeClient and LocalModel arrive with the browser SDK.
 * Node-only helpers (file ledger, tfjs WASM paths) live in their own modules so bundles for browsers stay clean.
 */
export { Trainer, TrainerError, type Examples, type Example, type FitOptions, type FitResult, type PrivacyOptions, type TrainerOptions } from './training/trainer.ts';
export { selectBackend, BackendError, BACKEND_ORDER, type BackendName } from './training/backend.ts';

export { PrivacyLedger, PrivacyBudgetError, MemoryLedgerStore, type LedgerStore, type LedgerData, type Budget } from './privacy/ledger.ts';
export { IndexedDbLedgerStore, LedgerStoreError } from './privacy/indexeddb-ledger-store.ts';
export { Participant, type ParticipantOptions, type RoundOutcome, type DropPoint } from './federated/participant.ts';
export { EdgeError } from './federated/http.ts';
