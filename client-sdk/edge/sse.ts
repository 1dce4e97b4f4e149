/**
 * Server-sent events as the edge sends them (HTML Living Standard §9.2 "Server-sent events"; the edge ends lines with
 * LF): the `data` of each event, in order — its `data:` lines joined with newlines; other fields are ignored.
 * Returning early (a `break`) cancels the body, which ends the server's generation.
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string, void> {
  const reader = body.pipeThrough(new TextDecoderStream() as ReadableWritablePair<string, Uint8Array>).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += value ?? '\n\n';
      let end = buffer.indexOf('\n\n');
      for (; end >= 0; end = buffer.indexOf('\n\n')) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(line[5] === ' ' ? 6 : 5));
        buffer = buffer.slice(end + 2);
        if (data.length) yield data.join('\n');
      }
      if (done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
