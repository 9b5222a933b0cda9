// The one table that decides, for every gRPC status, whether a failed call definitely did not take
// effect (`fail`) or may have (`info`), after Maelstrom's error table with its `definite?` flag.
// Clients never decide this case by case. A status is definite only when the server cannot have
// applied the request: it rejected it before doing anything, or the request never left the client.
// Read-only operations have no effect to be unsure about, so any error on a read is `fail`.
import { status as Status } from '@grpc/grpc-js';

export interface ErrorClass {
  readonly code: string;
  readonly definite: boolean;
  readonly why: string;
}

const table: Readonly<Record<number, ErrorClass>> = {
  [Status.CANCELLED]: { code: 'CANCELLED', definite: false, why: 'the call was cancelled after it may have reached the node' },
  [Status.UNKNOWN]: { code: 'UNKNOWN', definite: false, why: 'the server failed in an unknown way' },
  [Status.INVALID_ARGUMENT]: { code: 'INVALID_ARGUMENT', definite: true, why: 'the node validated and rejected the request' },
  [Status.DEADLINE_EXCEEDED]: { code: 'DEADLINE_EXCEEDED', definite: false, why: 'no answer in time; the node may still apply it' },
  [Status.NOT_FOUND]: { code: 'NOT_FOUND', definite: true, why: 'the node rejected the request' },
  [Status.ALREADY_EXISTS]: { code: 'ALREADY_EXISTS', definite: true, why: 'the node rejected the request' },
  [Status.PERMISSION_DENIED]: { code: 'PERMISSION_DENIED', definite: true, why: 'the node rejected the caller' },
  [Status.RESOURCE_EXHAUSTED]: { code: 'RESOURCE_EXHAUSTED', definite: false, why: 'may come from a transport limit after the request was delivered' },
  [Status.FAILED_PRECONDITION]: { code: 'FAILED_PRECONDITION', definite: true, why: 'the node refused before applying' },
  [Status.ABORTED]: { code: 'ABORTED', definite: false, why: 'the node aborted mid-way' },
  [Status.OUT_OF_RANGE]: { code: 'OUT_OF_RANGE', definite: true, why: 'the node validated and rejected the request' },
  [Status.UNIMPLEMENTED]: { code: 'UNIMPLEMENTED', definite: true, why: 'the node does not serve this method' },
  [Status.INTERNAL]: { code: 'INTERNAL', definite: false, why: 'the node failed while handling the request' },
  [Status.UNAVAILABLE]: { code: 'UNAVAILABLE', definite: false, why: 'the connection broke; the request may have been delivered' },
  [Status.DATA_LOSS]: { code: 'DATA_LOSS', definite: false, why: 'the node reported data loss' },
  [Status.UNAUTHENTICATED]: { code: 'UNAUTHENTICATED', definite: true, why: 'the node rejected the caller' },
};

/**
 * UNAVAILABLE is definite when grpc-js says the connection was never established: the request was
 * never written to a socket, so it cannot have been applied.
 */
const NEVER_SENT = /No connection established|ECONNREFUSED|connect EHOSTUNREACH|Name resolution failed|getaddrinfo/i;

export interface Classified {
  readonly type: 'fail' | 'info';
  /** "CODE: details", recorded as the op's error. */
  readonly error: string;
}

export function classifyError(error: unknown, readOnly: boolean): Classified {
  const code = typeof (error as { code?: unknown })?.code === 'number' ? (error as { code: number }).code : undefined;
  const details = String((error as { details?: unknown })?.details ?? (error as Error)?.message ?? error);
  const entry = code === undefined ? undefined : table[code];
  if (!entry) return { type: readOnly ? 'fail' : 'info', error: `NOT_GRPC: ${details}` };
  const definite = entry.definite || (code === Status.UNAVAILABLE && NEVER_SENT.test(details));
  return { type: readOnly || definite ? 'fail' : 'info', error: `${entry.code}: ${details}` };
}

/** The table itself, for --help-errors and the README. */
export function errorTable(): readonly ErrorClass[] {
  return Object.values(table);
}
