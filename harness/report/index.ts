// The report's entry point for the runner: at the end of a run, one call validates and writes
// results.json, then renders report.html and junit.xml into the run folder.
import { writeFile } from 'node:fs/promises';
import type { RunFolder } from '../results.ts';
import { writeResults } from '../results.ts';
import { renderJUnit } from './junit.ts';
import { renderReport } from './render.ts';
import type { ReportInput } from './render.ts';

export { renderJUnit } from './junit.ts';
export { renderReport, reportDataFromHtml } from './render.ts';
export type { ReportInput } from './render.ts';

/** Writes results.json (validated against the schema), report.html and junit.xml; returns the report's path. */
export async function writeRunOutputs(folder: RunFolder, input: ReportInput): Promise<string> {
  await writeResults(folder, input.results);
  await writeFile(folder.report, renderReport(input));
  await writeFile(folder.junit, renderJUnit(input.results));
  return folder.report;
}
