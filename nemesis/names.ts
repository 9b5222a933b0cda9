// The names of the fault packages, as `--nemesis` spells them, in the order `all` runs and lists them.
// This list is the one owner of those names: nemesis/index.ts must register a factory for each (its
// registry is typed against this list, so a name without a package, or a package without a name, does
// not compile), and the option table reads them from here. It lives apart from the registry so that
// reading the names does not load every package (the clock package needs the Docker client), which
// the bundled `npm run check` must not carry.
export const FAULT_PACKAGE_NAMES = ['partition', 'clock', 'kill', 'pause', 'packet', 'delay', 'netem', 'disk'] as const;

export type FaultPackageName = (typeof FAULT_PACKAGE_NAMES)[number];
