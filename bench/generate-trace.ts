/** What bench/generate-page.ts reports to bench/generate.ts: one contestant's runs in Chromium, token by token. */

/** A piece of text as it arrived: ms since the call, and (transformers.js) the token's id. */
export interface Arrival {
  t: number;
  text: string;
  id?: number;
}

export interface PageTrace {
  arrivals: Arrival[];
  /** ms from the call to the end of the generation. */
  ms: number;
  text: string;
  completionTokens: number;
  promptTokens: number;
  finishReason: string;
}

export interface PageRun {
  /** What ran: LocalModel's provider, or transformers.js's device and dtype. */
  ranOn: string;
  loadMs: number;
  warm: PageTrace;
  traces: PageTrace[];
}
