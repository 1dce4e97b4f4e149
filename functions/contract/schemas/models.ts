/**
 * What the inference and model routes answer (and the alias body), as zod schemas: the OpenAPI document's components
 * and the SDK's types. Documentation and types only: no route parses its own answer with these.
 */
import { z } from 'zod';
import { DATATYPES } from '../../../federated/oip/datatypes.ts';
import type { ModelSummary, ProbeVerdict, TensorMeta, VersionRecord } from '../../registry/model-record.ts';
import type { TextGeneration } from '../../../federated/oip/model-records.ts';
import type { Covers } from './covers.ts';
import { named } from './named.ts';

const sha256 = z
  .string()
  .regex(/^[0-9a-f]{64}$/)
  .describe('SHA-256 of the ONNX bytes, lower-case hex');

export const errorBody = named(
  'Error',
  z.object({
    error: z.string().describe('what was wrong; quotes at most 64 characters of what was sent'),
  }),
);

export const serverMetadata = named(
  'ServerMetadata',
  z.looseObject({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }),
);
export const live = named('Live', z.looseObject({ live: z.literal(true) }));
export const ready = named(
  'Ready',
  z.looseObject({
    ready: z.literal(true),
    default_model: z.string(),
    execution_provider: z.enum(['wasm', 'webgpu']),
  }),
);

export const tensorMeta = named(
  'TensorMetadata',
  z.looseObject({
    name: z.string(),
    datatype: z.enum(DATATYPES),
    shape: z.array(z.number().int().min(-1)).describe('-1 marks a dynamic dimension'),
    featurizer: z
      .looseObject({
        kind: z.literal('hashedBagOfWords'),
        buckets: z.number().int(),
        ngrams: z.union([z.literal(1), z.literal(2)]),
        maxChars: z.number().int(),
      })
      .optional()
      .describe(
        'declared by the model: the input also takes raw text, a BYTES tensor of its shape without the last axis',
      ),
    labels: z
      .array(z.string())
      .optional()
      .describe("declared by the model (fedge.labels): what each index of the output's last axis means"),
  }),
);

export const modelSummary = named(
  'ModelSummary',
  z.looseObject({
    name: z.string(),
    versions: z.array(z.string()).describe('oldest first'),
    aliases: z.record(z.string(), z.string()).describe('alias → version'),
  }),
);
export const modelList = named('ModelList', z.looseObject({ models: z.array(modelSummary) }));

export const probeVerdict = named(
  'ProbeVerdict',
  z
    .looseObject({
      ok: z.boolean().describe('whether the run passed'),
      inputs: z
        .enum(['generated', 'warmup'])
        .describe(
          "generated: built from the model's metadata (dynamic dimensions 1, zeros; a failure is reported here, not refused); warmup: the upload's warmup query (a failure is refused, so this is always ok)",
        ),
      shapes: z.string().describe('what it ran on, in the warmup syntax: name:d1xd2…[=value], comma-separated'),
      error: z.string().optional().describe("ONNX Runtime's reason, when the run on generated inputs failed"),
    })
    .describe('how the version ran once at upload; absent for bundled and task-published versions'),
);

export const textGeneration = named(
  'TextGeneration',
  z
    .looseObject({
      vocabSize: z.number().int().positive().describe("token ids the model's tokenizer knows"),
      contextLength: z
        .number()
        .int()
        .positive()
        .optional()
        .describe('positions the model was trained for, when its file says'),
      layers: z.number().int().positive(),
    })
    .describe(
      'present when the version can generate text: a decoder carrying its tokenizer (the generate routes, /openai/v1)',
    ),
);

export const modelMetadata = named(
  'ModelMetadata',
  z.looseObject({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.literal('onnxruntime_onnx'),
    inputs: z.array(tensorMeta),
    outputs: z.array(tensorMeta),
    parameters: z.looseObject({
      version: z.string().describe('the version the reference resolved to'),
      sha256,
      probe: probeVerdict.optional(),
      text_generation: textGeneration.optional(),
    }),
  }),
);
export const modelReady = named(
  'ModelReady',
  z.looseObject({ name: z.string(), version: z.string(), ready: z.literal(true) }),
);

export const inferResponse = named(
  'InferResponse',
  z.looseObject({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional().describe("the request's id, when it sent one"),
    outputs: z.array(
      z.looseObject({
        name: z.string(),
        datatype: z.enum(DATATYPES),
        shape: z.array(z.number().int().nonnegative()),
        data: z
          .array(z.union([z.number(), z.boolean(), z.string()]))
          .optional()
          .describe('flat, row-major; BOOL as booleans, FP16 as numbers, INT64/UINT64 beyond 2^53 as decimal strings'),
        parameters: z
          .looseObject({ binary_data_size: z.number().int().nonnegative() })
          .optional()
          .describe('set instead of data when the output travels as binary tensor data'),
      }),
    ),
  }),
);

export const versionRecord = named(
  'VersionRecord',
  z.looseObject({
    model: z.string(),
    version: z.string(),
    sha256,
    bytes: z.number().int().positive(),
    inputs: z.array(tensorMeta),
    outputs: z.array(tensorMeta),
    createdAt: z.string().describe('ISO 8601'),
    probe: probeVerdict.optional(),
    textGeneration: textGeneration.optional(),
  }),
);
export const aliasResult = named(
  'AliasResult',
  z.looseObject({ model: z.string(), alias: z.string(), version: z.string(), sha256 }),
);
export const deleteResult = named(
  'DeleteResult',
  z.looseObject({ model: z.string(), version: z.string(), deleted: z.literal(true) }),
);

export const aliasBody = named(
  'SetAliasRequest',
  z.object({ version: z.string().min(1).describe('an existing version of the model') }),
);

export const COVERED_MODELS: [
  Covers<ModelSummary, typeof modelSummary>,
  Covers<TensorMeta, typeof tensorMeta>,
  Covers<VersionRecord, typeof versionRecord>,
  Covers<ProbeVerdict, typeof probeVerdict>,
  Covers<TextGeneration, typeof textGeneration>,
  Covers<{ error: string }, typeof errorBody>,
] = [true, true, true, true, true, true];
