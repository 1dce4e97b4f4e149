/**
 * Peak resident memory (VmHWM, Linux /proc) of every process in a process group — the local server's workerd
 * among them — so the simulation can report how the server's memory grows with devices per round, and the
 * inference and load benchmarks what each server holds.
 * Processes are found by their group id (the PID we started), never by name.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessPeak {
  pid: number;
  command: string;
  peakRssMiB: number;
}

export function peakRssOfGroup(pgid: number): ProcessPeak[] {
  return memoryOfGroup(pgid, 'VmHWM');
}

/** Resident memory now (VmRSS) of every process in a process group, largest first (`peakRssMiB` holds it). */
export function rssOfGroup(pgid: number): ProcessPeak[] {
  return memoryOfGroup(pgid, 'VmRSS');
}

function memoryOfGroup(pgid: number, field: 'VmHWM' | 'VmRSS'): ProcessPeak[] {
  const out: ProcessPeak[] = [];
  const pattern = new RegExp(`${field}:\\s+(\\d+) kB`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command: state, ppid, pgrp, …
      const close = stat.lastIndexOf(')');
      const [, , pgrp] = stat.slice(close + 2).split(' ');
      if (Number(pgrp) !== pgid) continue;
      const kb = pattern.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      if (kb)
        out.push({
          pid: Number(entry),
          command: stat.slice(stat.indexOf('(') + 1, close),
          peakRssMiB: Number(kb[1]) / 1024,
        });
    } catch {
      /* the process ended while we looked */
    }
  }
  return out.sort((a, b) => b.peakRssMiB - a.peakRssMiB);
}
