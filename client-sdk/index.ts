/**
 * fedge/client — what web apps embed: EdgeClient (typed calls to the edge), LocalModel (the same ONNX model on the
 * device: WebGPU → WASM), Trainer (on-device fine-tuning with DP-SGD), the privacy ledger (memory, IndexedDB) and
 * Participant (joins federated tasks). ES modules without side effects: a bundle keeps only what the app imports
 * (EdgeClient alone does not pull in onnxruntime-web or TensorFlow.js). Node-only helpers (file ledger, tfjs WASM
 * paths) live in their own modules so bundles for browsers stay clean. onnxruntime-web (LocalModel) and TensorFlow.js
 * (Trainer, Participant) are optional peer dependencies, imported when first used; a MissingDependencyError names the
 * package to install.
 */
export {
  EdgeClient,
  type EdgeClientOptions,
  type CallOptions,
  type InferOptions,
  type InferResult,
  type GenerateParameters,
  type GenerateResponse,
  type GenerateStreamEvent,
  type AliasResult,
  type CreateTaskRequest,
  type DeleteResult,
  type ModelMetadata,
  type ServerMetadata,
  type ModelSummary,
  type VersionRecord,
  type TaskLifecycle,
  type TaskStatus,
  type TaskSummary,
  type TaskCreated,
  type TaskDeleted,
  type TaskList,
} from './edge/edge-client.ts';
export { type Tensor, type TensorInput, type Datatype, type TypedArray, TensorError } from './edge/tensors.ts';
export {
  LocalModel,
  LocalModelError,
  ORT_WASM_FILES,
  webgpuAvailable,
  type LocalModelOptions,
  type LocalRunResult,
  type LocalGenerateResult,
  DEVICE_GENERATION_LIMITS,
  type Provider,
  type RanOn,
} from './local/local-model.ts';
export { CacheApiModelCache, MemoryModelCache, type ModelCache } from './local/model-cache.ts';
export {
  Trainer,
  TrainerError,
  type Examples,
  type Example,
  type FitOptions,
  type FitResult,
  type PrivacyOptions,
  type TrainerOptions,
} from './training/trainer.ts';
export { selectBackend, BackendError, BACKEND_ORDER, type BackendName } from './training/backend.ts';
export {
  LanguageModelTrainer,
  type LanguageModelTrainerOptions,
  type LmFitOptions,
  type LmFitResult,
  type LmEvaluation,
  type Sequence,
  type TrainableSpec,
} from './training/lm-trainer.ts';

export {
  PrivacyLedger,
  PrivacyBudgetError,
  MemoryLedgerStore,
  type LedgerStore,
  type LedgerData,
  type Budget,
} from './privacy/ledger.ts';
export { IndexedDbLedgerStore, LedgerStoreError } from './privacy/indexeddb-ledger-store.ts';
export { Participant, type ParticipantOptions, type RoundOutcome, type DropPoint } from './federated/participant.ts';
export type { TextData } from './federated/lm-round.ts';
export { EdgeError } from './edge/http.ts';
export { MissingDependencyError } from '../federated/model/missing-dependency.ts';
