// Input validation for everything that reaches the node over gRPC, from clients and from peers. Every
// rule throws RpcError with a gRPC status and a message that names the field, the limit and the fix,
// so bad input is always answered and never crashes the node.
import { status } from '@grpc/grpc-js';
import type { Kind } from './merge.ts';
import { MAX_LOGICAL, MAX_WALL_MS, formatHlc } from './hlc.ts';
import type { Hlc as HlcMessage, MeshWrite } from '../proto/gen/faultline.ts';
import type { KeyWrite } from './replica.ts';

export const MAX_ID_BYTES = 256;
export const MAX_VALUE_BYTES = 64 * 1024;

/** An error that carries the gRPC status to answer with. */
export class RpcError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
  }
}

export const invalid = (message: string) => new RpcError(status.INVALID_ARGUMENT, message);

/** Characters JSON.stringify leaves as they are but that break or fake a line in a log or terminal. */
const UNSAFE_CHARS = /[\u007f-\u009f\u2028\u2029]/g;

/**
 * Text from a request, made safe to repeat in an error or a log line: quoted, control characters
 * escaped (so a "\n" cannot forge a log line) and cut to `max` characters (so a 1 MiB field does not
 * become a 1 MiB error or log line), with the full length said when it was cut.
 */
export function quote(value: unknown, max = 64): string {
  const text = typeof value === 'string' ? value : String(value);
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = JSON.stringify(cut).replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return text.length > max ? `${escaped.slice(0, -1)}…" (${text.length} characters)` : escaped;
}

/** C0 and C1 control characters and DEL: never part of an id (a NUL could make two keys collide). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHAR = /[\u0000-\u001f\u007f-\u009f]/;

export function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string (at most ${MAX_ID_BYTES} bytes)`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_ID_BYTES) throw invalid(`${field} is ${bytes} bytes; the limit is ${MAX_ID_BYTES} bytes`);
  const control = CONTROL_CHAR.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, '0');
    throw invalid(`${field} ${quote(value)} contains the control character U+${code.toUpperCase()} at index ${control.index}; ids are text without control characters`);
  }
  return value;
}

/** Request ids are optional (empty: no deduplication) but bounded like ids. */
export function checkRequestId(value: unknown): string {
  if (value === undefined || value === '') return '';
  return checkId('request_id', value);
}

export function checkKind(value: unknown): Kind {
  if (value === undefined || value === '' || value === 'lww') return 'lww';
  if (value === 'max') return 'max';
  throw invalid(`kind ${quote(value)} is unknown; use "lww" (the default, also when empty) or "max"`);
}

const NUMBER_RE = /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/;

export function checkValue(value: unknown, kind: Kind, field = 'value'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${field} must be a non-empty string (to remove a component use Delete)`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_VALUE_BYTES) throw invalid(`${field} is ${bytes} bytes; the limit is ${MAX_VALUE_BYTES} bytes (64 KiB)`);
  if (kind === 'max' && !(NUMBER_RE.test(value) && Number.isFinite(Number(value)))) {
    throw invalid(`${field} ${quote(value, 40)} is not a decimal number, which kind "max" requires (e.g. "3" or "2.5")`);
  }
  return value;
}

export function checkDelta(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw invalid(`delta must be an integer within ±${Number.MAX_SAFE_INTEGER}, got ${String(value)}`);
  }
  return value;
}

function checkHlc(field: string, ts: HlcMessage | undefined): string {
  if (!ts) throw invalid(`${field} is missing`);
  if (!Number.isSafeInteger(ts.wallMs) || ts.wallMs < 0 || ts.wallMs > MAX_WALL_MS) throw invalid(`${field}.wall_ms ${ts.wallMs} is outside 0..${MAX_WALL_MS}`);
  if (!Number.isInteger(ts.logical) || ts.logical < 0 || ts.logical > MAX_LOGICAL) throw invalid(`${field}.logical ${ts.logical} is outside 0..${MAX_LOGICAL}`);
  checkId(`${field}.node`, ts.node);
  if (ts.node.includes(':')) throw invalid(`${field}.node ${quote(ts.node)} must not contain ":"`);
  return formatHlc(ts);
}

function checkCount(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalid(`${field} must be a non-negative safe integer, got ${String(value)}`);
  return value;
}

/** Validates a peer's MeshWrite and converts it to the replica's form. */
export function meshWriteToKey(w: MeshWrite, index: number): KeyWrite {
  const at = `writes[${index}]`;
  checkId(`${at}.origin`, w.origin);
  const entity = checkId(`${at}.entity`, w.entity);
  if (w.counter !== '') {
    if (w.component !== '') throw invalid(`${at} names both component ${quote(w.component)} and counter ${quote(w.counter)}; a write carries one`);
    const counter = checkId(`${at}.counter`, w.counter);
    if (!w.share) throw invalid(`${at}.share is missing for counter ${quote(counter)}`);
    const origin = checkId(`${at}.share.origin`, w.share.origin);
    return { entity, counter, origin, share: { p: checkCount(`${at}.share.p`, w.share.p), n: checkCount(`${at}.share.n`, w.share.n) } };
  }
  const component = checkId(`${at}.component`, w.component);
  const kind = checkKind(w.kind);
  const ts = checkHlc(`${at}.ts`, w.ts);
  if (w.deleted) {
    if (w.value !== '') throw invalid(`${at} is a tombstone and must have an empty value`);
    return { entity, component, state: { value: '', ts, deleted: true, kind } };
  }
  return { entity, component, state: { value: checkValue(w.value, kind, `${at}.value`), ts, deleted: false, kind } };
}
