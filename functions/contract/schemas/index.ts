/** Every schema of the contract, for the tests and tools that read them all. */
export * from './models.ts';
export * from './stats.ts';
export * from './task-bodies.ts';
export * from './tasks.ts';
export * from './generation.ts';
