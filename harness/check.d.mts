// Types of harness/check.mjs (plain JavaScript so that `npm run check` starts without the type stripper).
export interface EnsureBundleOptions {
  /** The entry point, relative to `base`. @default 'harness/check-cli.ts' */
  readonly entry?: string;
  /** Where bundles and manifest.json go, relative to `base`. @default 'dist/check' */
  readonly outDir?: string;
  /** The folder paths are relative to. @default the repository root */
  readonly base?: string;
}

/** Builds the bundle if any source (or output) changed since the last build; returns its entry file. */
export function ensureBundle(options?: EnsureBundleOptions): Promise<{ file: string; built: boolean }>;
