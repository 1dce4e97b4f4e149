#!/usr/bin/env node
/**
 * The fedge command line: `fedge help` lists the commands (today: quantize).
 */
import { UsageError } from './usage-error.ts';

const USAGE = `usage: fedge <command> [options]

commands:
  quantize <in.onnx> <out.onnx> [--mode weight-only|dynamic|fp16] [--min-elements N] [--samples N]
           [--shape input=d1,d2,…]… [--value input=v,…]… [--inputs file.json] [--max-deviation X|X%]
      int8- (or fp16-) quantize the weights of an fp32 ONNX model — MatMul (either side), Gemm, Conv, LSTM/GRU/RNN,
      Gather, in subgraphs too; prints the size before/after and the max/mean
      deviation of each output (onnxruntime-web, WASM — what the edge runs) on generated inputs (open dimensions 1,
      or as --shape gives them) or on the inputs in file.json ({"inputs": [{name, shape, data}]}); writes out.onnx
      only when the quantized model loads, runs and stays within --max-deviation (default 25 % of each output's
      largest value for int8, 1 % for fp16)
  help     this text`;

const [command, ...args] = process.argv.slice(2);
try {
  // Imported on use: quantize needs onnxruntime-web (an optional peer), `fedge help` does not.
  if (command === 'quantize') await (await import('./quantize.ts')).quantizeCommand(args);
  else if (command === undefined || command === '--help' || command === '-h' || command === 'help') console.log(USAGE);
  else throw new UsageError(`unknown command '${command}'`);
} catch (e) {
  const err = e as Error;
  console.error(`fedge: ${err.message}`);
  if (err instanceof UsageError) console.error(`\n${USAGE}`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
