/**
 * Setup of the workers test pool: protobufjs (through onnx-proto) writes the way it does in the deployed bundle.
 * In this pool protobufjs finds Node's `require` and writes strings of 40+ characters through workerd's Buffer,
 * whose utf8Write refuses its arguments; a bundled Worker has no `require`, so protobufjs uses its own UTF-8
 * writer. Dropping its Buffer here makes the pool take the bundle's path (publishing a model from a task included).
 */
import protobuf from '../../node_modules/onnx-proto/node_modules/protobufjs/minimal.js';

(protobuf.util as { Buffer: unknown }).Buffer = null;
protobuf.configure();
