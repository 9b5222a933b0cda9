// Where the report's browser checks find Chromium: Debian's `chromium` package (apt-get install -y
// chromium), or FAULTLINE_CHROMIUM to point elsewhere, with the flags that keep it off the network.
import { existsSync } from 'node:fs';

/** Flags for headless runs in containers and CI: no sandbox, no GPU, nothing that phones home. */
export const chromiumArgs: readonly string[] = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The Chromium executable, or an error that says how to install it. */
export function chromiumPath(): string {
  const p = process.env.FAULTLINE_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) {
    throw new Error(`Chromium not found at ${p}: install Debian's package with \`apt-get install -y chromium\`, or set FAULTLINE_CHROMIUM to a Chromium executable`);
  }
  return p;
}
