/**
 * A turn of a device's event loop between two tokens: the page paints and handles input, since an ORT run never
 * yields. A MessageChannel message (browsers, Node) rather than setTimeout(0), which browsers clamp to 4 ms once
 * timers nest (HTML §8.6 "Timers": nesting level > 5) — 4 ms a token, measured by bench:generate. Not for workerd,
 * which delivers it without returning to its I/O loop (functions/generation/edge-generation.ts).
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(undefined);
  });
}
