import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { classifyError, errorTable } from '../error-table.ts';

const err = (code: number, details: string) => Object.assign(new Error(details), { code, details });

describe('the gRPC error table', () => {
  it('covers every gRPC status but OK', () => {
    expect(errorTable().length).toBe(Object.keys(status).filter((k) => Number.isNaN(Number(k)) && k !== 'OK').length);
  });

  it('maps rejections to fail and ambiguous outcomes to info for writes', () => {
    expect(classifyError(err(status.INVALID_ARGUMENT, 'entity is empty'), false)).toEqual({ type: 'fail', error: 'INVALID_ARGUMENT: entity is empty' });
    expect(classifyError(err(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), false).type).toBe('info');
    expect(classifyError(err(status.UNAVAILABLE, 'Connection dropped'), false).type).toBe('info');
    expect(classifyError(err(status.INTERNAL, 'boom'), false).type).toBe('info');
  });

  it('treats UNAVAILABLE before a connection existed as definite', () => {
    expect(classifyError(err(status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 10.0.0.2:7000'), false).type).toBe('fail');
  });

  it('makes every error on a read definite, since a read changes nothing', () => {
    expect(classifyError(err(status.DEADLINE_EXCEEDED, 'Deadline exceeded'), true).type).toBe('fail');
    expect(classifyError(new Error('socket hang up'), true)).toEqual({ type: 'fail', error: 'NOT_GRPC: socket hang up' });
    expect(classifyError(new Error('socket hang up'), false).type).toBe('info');
  });
});
