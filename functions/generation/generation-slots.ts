/**
 * How many generations this isolate runs at once. Each holds a key/value cache (megabytes) and takes a turn of the
 * one JavaScript thread per token, so past FEDGE_MAX_GENERATIONS a new one is refused (429) rather than slowing
 * every stream already running.
 */
let running = 0;

/** A slot, or undefined when `max` are taken; call the returned function once, when the generation ends. */
export function takeGenerationSlot(max: number): (() => void) | undefined {
  if (running >= max) return undefined;
  running++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    running--;
  };
}

/** Generations running in this isolate now. */
export function runningGenerations(): number {
  return running;
}
