#!/usr/bin/env node
/**
 * The fedge command line: `fedge help` lists the commands (quantize, pack); `fedge <command> --help` shows one.
 * From a clone, before any build: `npm run fedge -- <command> …` (package.json runs this file with Node's type
 * stripping); from an installed package: `npx fedge <command> …` (dist/cli/fedge.js).
 * A command line it cannot act on gives one line of error and one of usage on stderr, exit code 2; bad input
 * (an unreadable or invalid model, a failed check) gives the reason, exit code 1. Never a stack trace.
 */
import { UsageError } from './usage-error.ts';

const PACK_SYNOPSIS =
  'fedge pack <model.onnx> --tokenizer tokenizer.json [--generation-config generation_config.json] [--tokenizer-config tokenizer_config.json] <out.onnx>';

const QUANTIZE_SYNOPSIS = 'fedge quantize <in.onnx> <out.onnx> [--mode weight-only|dynamic|fp16] [options]';

const QUANTIZE = `  quantize <in.onnx> <out.onnx> [--mode weight-only|dynamic|fp16] [--min-elements N] [--samples N]
           [--shape input=d1,d2,…]… [--value input=v,…]… [--inputs file.json] [--max-deviation X|X%]
      int8- (or fp16-) quantize the weights of an fp32 ONNX model — MatMul (either side), Gemm, Conv, LSTM/GRU/RNN,
      Gather, in subgraphs too; prints the size before/after and the max/mean
      deviation of each output (onnxruntime-web, WASM — what the edge runs) on generated inputs (open dimensions 1,
      or as --shape gives them) or on the inputs in file.json ({"inputs": [{name, shape, data}]}); writes out.onnx
      only when the quantized model loads, runs and stays within --max-deviation (default 25 % of each output's
      largest value for int8, 1 % for fp16)`;

const PACK = `  pack <model.onnx> --tokenizer tokenizer.json [--generation-config g.json] [--tokenizer-config t.json] <out.onnx>
      put a decoder's tokenizer.json (and generation_config.json, tokenizer_config.json) into its ONNX metadata, so
      the edge and devices generate with the one file; checks the layout (Optimum's with-past), that the tokenizer
      fits the logits, and that greedy decoding runs (onnxruntime-web) before writing out.onnx`;

const USAGE = `usage: fedge <command> [options]

commands:
${QUANTIZE}
${PACK}
  help     this text (fedge <command> --help: one command)`;

const QUANTIZE_USAGE = `usage: ${QUANTIZE_SYNOPSIS}

${QUANTIZE}

  --mode          weight-only (default: int8 storage, fp32 compute), dynamic (MatMulInteger), fp16
  --min-elements  quantize only weights with at least N elements
  --samples       generated inputs to measure the deviation on (default 32)
  --shape         sizes of an input's open dimensions (repeat per input)
  --value         fixed values of an input, e.g. a sample rate (repeat per input)
  --inputs        real inputs instead of generated ones
  --max-deviation the tolerance: absolute (0.01) or relative to each output's largest |value| (5%)

needs onnxruntime-web (npm install onnxruntime-web)`;

const [command, ...args] = process.argv.slice(2);
const wantsHelp = args.includes('--help') || args.includes('-h');
try {
  if ((command === 'quantize' && wantsHelp) || (command === 'help' && args[0] === 'quantize'))
    console.log(QUANTIZE_USAGE);
  // Imported on use: quantize needs onnxruntime-web (an optional peer), `fedge help` does not.
  else if (command === 'quantize') await (await import('./quantize.ts')).quantizeCommand(args);
  else if ((command === 'pack' && wantsHelp) || (command === 'help' && args[0] === 'pack'))
    console.log(`usage: ${PACK_SYNOPSIS}\n\n${PACK}\n\nneeds onnxruntime-web (npm install onnxruntime-web)`);
  else if (command === 'pack') await (await import('./pack.ts')).packCommand(args);
  else if (command === undefined || command === '--help' || command === '-h' || command === 'help') console.log(USAGE);
  else throw new UsageError(`unknown command '${command}'`);
} catch (e) {
  const err = e as Error;
  if (err instanceof UsageError) {
    const hint =
      command === 'quantize'
        ? `usage: ${QUANTIZE_SYNOPSIS} (fedge quantize --help for every option)`
        : command === 'pack'
          ? `usage: ${PACK_SYNOPSIS}`
          : 'usage: fedge <command> [options] (fedge help lists the commands)';
    console.error(`fedge: ${err.message}\n${hint}`);
  } else if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /onnxruntime-web/.test(err.message)) {
    console.error(
      `fedge: ${command} runs the models with onnxruntime-web, which is not installed: npm install onnxruntime-web`,
    );
  } else console.error(`fedge: ${err.message}`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
