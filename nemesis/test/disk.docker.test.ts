// The disk layer and the disk fault package on real containers. First the layer itself (a second mount
// inside a node container, driven by a script): what survives a crash is exactly what was fsynced
// (file bytes) and fsyncdir'ed (names), and ENOSPC, EIO and fsync delays act and go away. Then the
// package on a one-node cluster: a full or failing disk makes the node refuse writes with an error (no
// hang, no acknowledgement), it takes writes again once the fault is stopped, and an acknowledged write
// survives a power loss.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../harness/cluster.ts';
import { ensureImage } from '../../harness/image.ts';
import { StoreClient, type GetReply, type PutReply } from '../../proto/gen/faultline.ts';
import { diskContainerNeeds, diskPackage, parseLayerStatus } from '../disk.ts';
import { ipOf } from '../net.ts';
import { storeMesh } from '../../harness/systems/store-mesh/index.ts';

let cluster: Cluster;
const nodes = ['n1'];

beforeAll(async () => {
  const image = await ensureImage();
  cluster = await Cluster.start({ system: storeMesh, runId: `nemesis-disk-${process.pid}`, nodes: 1, image, needs: diskContainerNeeds });
});

afterAll(async () => {
  await cluster?.teardown();
});

/** Runs a shell script in n1; fails the test with its output when it exits non-zero. */
async function sh(script: string): Promise<string> {
  const r = await cluster.exec('n1', ['sh', '-c', script], { timeoutMs: 60_000 });
  expect(r.exitCode, `script exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

// A second layer at /mnt/t (backing /var/lib/t), with mount, crash-and-remount and node helpers.
const LAYER = `
set -eu
B=/var/lib/t M=/mnt/t S=/run/t.sock
mkdir -p $M
up() { faultline-diskfs mount $B $M $S 2>/dev/null & for i in $(seq 200); do [ -S $S ] && grep -q " $M fuse.faultline " /proc/mounts && return 0; sleep 0.05; done; echo "mount failed"; exit 1; }
crash() { cd /; faultline-diskfs ctl $S crash >/dev/null 2>&1 || true; for i in $(seq 100); do grep -q " $M " /proc/mounts || break; umount -l $M 2>/dev/null || true; sleep 0.05; done; }
ctl() { faultline-diskfs ctl $S "$1"; }
js() { (cd $M && node -e "const fs=require('fs'); const dir=()=>{const d=fs.openSync('.','r'); fs.fsyncSync(d); fs.closeSync(d)}; const ls=()=>fs.readdirSync('.').sort().join(','); $1"); }
`;

describe('the disk layer (faultline-diskfs)', () => {
  it('keeps after a crash exactly what was fsynced and fsyncdir-ed, file bytes and names alike', async () => {
    const out = await sh(`${LAYER}
rm -rf $B; up
js "
const a=fs.openSync('a','a'); fs.writeSync(a,'synced;'); fs.fdatasyncSync(a); dir();
fs.writeSync(a,'unsynced;');
const b=fs.openSync('b','a'); fs.writeSync(b,'b-data'); fs.fdatasyncSync(b);
fs.writeFileSync('gone','x'); fs.writeFileSync('named','z');
fs.writeFileSync('c.tmp','snap'); const c=fs.openSync('c.tmp','r+'); fs.fsyncSync(c); fs.renameSync('c.tmp','c'); dir();
fs.renameSync('c','c2'); fs.unlinkSync('gone');
fs.writeFileSync('never','y'); const n=fs.openSync('never','r+'); fs.fsyncSync(n);
console.log('before', ls(), fs.readFileSync('a','utf8'));
"
echo "status $(ctl status)"
crash; up
js "console.log('after', ls(), fs.readFileSync('a','utf8'), fs.readFileSync('b','utf8'), fs.readFileSync('c','utf8'), JSON.stringify(fs.readFileSync('gone','utf8')), JSON.stringify(fs.readFileSync('named','utf8')))"
crash`);
    expect(out).toContain('before a,b,c2,named,never synced;unsynced;');
    const status = parseLayerStatus(out.split('\n').find((l) => l.startsWith('status'))!);
    expect(status.dirty_bytes).toBe(9 + 1); // "unsynced;" and "z" ("x" went with its unlink)
    // a: its unsynced append is gone. b: its data was synced and its name by a later fsyncdir. c: the
    // rename to c2 was never dir-synced. gone: its unlink was not synced, its data never was (empty).
    // never: fsynced, but its name was never synced. named: its name was synced, its data not (empty).
    expect(out).toContain('after a,b,c,gone,named synced; b-data snap "" ""');
  });

  it('gives ENOSPC to writes that grow a file and to creates while full, and takes them again after', async () => {
    const out = await sh(`${LAYER}
rm -rf $B; up
js "fs.writeFileSync('f','1234')"
ctl "set enospc=1" >/dev/null
js "
const f=fs.openSync('f','r+');
fs.writeSync(f,'ab',0); console.log('overwrite ok');
try { fs.writeSync(f,'more',4); } catch (e) { console.log('grow', e.code); }
try { fs.writeFileSync('g','x'); } catch (e) { console.log('create', e.code); }
"
ctl clear >/dev/null
js "fs.appendFileSync('f','56'); fs.writeFileSync('g','x'); console.log('after', fs.readFileSync('f','utf8'), ls())"
crash`);
    expect(out).toContain('overwrite ok');
    expect(out).toContain('grow ENOSPC');
    expect(out).toContain('create ENOSPC');
    expect(out).toContain('after ab3456 f,g');
  });

  it('fails fsync with EIO and drops what it should have written: a retried fsync succeeds, the data is lost', async () => {
    const out = await sh(`${LAYER}
rm -rf $B; up
js "const f=fs.openSync('log','a'); fs.writeSync(f,'one;'); fs.fdatasyncSync(f); dir()"
ctl "set eio_fsync=1" >/dev/null
js "const f=fs.openSync('log','a'); fs.writeSync(f,'two;'); try { fs.fdatasyncSync(f); } catch (e) { console.log('fsync', e.code); }"
ctl "set eio_write=1 eio_fsync=0" >/dev/null
js "const f=fs.openSync('log','a'); try { fs.writeSync(f,'x'); } catch (e) { console.log('write', e.code); }"
ctl clear >/dev/null
js "const f=fs.openSync('log','a'); fs.fdatasyncSync(f); console.log('retry ok', fs.readFileSync('log','utf8'))"
echo "status $(ctl status)"
crash; up
js "console.log('after', JSON.stringify(fs.readFileSync('log','utf8')))"
crash`);
    expect(out).toContain('fsync EIO');
    expect(out).toContain('write EIO');
    // Linux keeps showing the bytes of a failed writeback (its pages are clean, not dropped) ...
    expect(out).toContain('retry ok one;two;');
    const status = parseLayerStatus(out.split('\n').find((l) => l.startsWith('status'))!);
    expect(status.failed_fsyncs).toBe(1);
    expect(status.lost_bytes).toBe(4);
    // ... but they never reach the disk.
    expect(out).toContain('after "one;"');
  });

  it('delays every fsync by delay_fsync_ms', async () => {
    const out = await sh(`${LAYER}
rm -rf $B; up
ctl "set delay_fsync_ms=300" >/dev/null
js "const f=fs.openSync('f','a'); fs.writeSync(f,'x'); const t=performance.now(); fs.fdatasyncSync(f); const slow=performance.now()-t; fs.writeSync(f,'y'); console.log('slow', Math.round(slow))"
ctl clear >/dev/null
js "const f=fs.openSync('f','a'); fs.writeSync(f,'x'); const t=performance.now(); fs.fdatasyncSync(f); console.log('fast', Math.round(performance.now()-t))"
crash`);
    const slow = Number(/slow (\d+)/.exec(out)![1]);
    const fast = Number(/fast (\d+)/.exec(out)![1]);
    expect(slow).toBeGreaterThanOrEqual(295);
    expect(fast).toBeLessThan(100);
  });

  it('refuses a bad control command with a message that names it', async () => {
    const r = await cluster.exec('n1', ['faultline-diskfs', 'ctl', '/run/faultline-diskfs.sock', 'set enospc=yes']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('expected key=non-negative-integer, got "enospc=yes"');
  });
});

function store(): StoreClient {
  return new StoreClient(`${ipOf(cluster, 'n1')}:7000`, credentials.createInsecure());
}

async function put(entity: string, value: string, deadlineMs = 3000): Promise<PutReply> {
  const client = store();
  try {
    return await new Promise((resolve, reject) =>
      client.put({ entity, component: 'c', value, requestId: `${entity}-${value}`, kind: '' }, new Metadata(), { deadline: Date.now() + deadlineMs }, (e: ServiceError | null, r: PutReply) => (e ? reject(e) : resolve(r))),
    );
  } finally {
    client.close();
  }
}

async function get(entity: string): Promise<GetReply> {
  const client = store();
  try {
    return await new Promise((resolve, reject) => client.get({ entity }, (e: ServiceError | null, r: GetReply) => (e ? reject(e) : resolve(r))));
  } finally {
    client.close();
  }
}

async function putError(entity: string, value: string): Promise<ServiceError> {
  try {
    await put(entity, value);
  } catch (error) {
    return error as ServiceError;
  }
  throw new Error(`Put ${entity}=${value} was acknowledged on a disk that cannot take it`);
}

describe('the disk fault package on a node', () => {
  it('a full disk: writes fail with an error, not a hang; after the stop the log recovers and takes writes', async () => {
    const pkg = diskPackage({ nodes });
    expect(await pkg.unsupported(cluster)).toBeUndefined();
    await pkg.nemesis.setup(cluster);
    await put('e1', 'before');
    const started = await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'full', nodes } });
    expect(started.error).toBeUndefined();
    expect(started.value.verified).toBe(true);
    const first = await putError('e1', 'during-1');
    // The group in flight failed: its outcome is unknown (ABORTED = 10); later ones are refused (FAILED_PRECONDITION = 9).
    expect([9, 10]).toContain(first.code);
    expect(first.details).toMatch(/ENOSPC|refuses writes/);
    const second = await putError('e1', 'during-2');
    expect(second.code).toBe(9);
    expect(second.details).toContain('refuses writes until it recovers');
    expect((await get('e1')).entity?.components[0]?.value).toBe('before');
    const stopped = await pkg.nemesis.invoke({ f: 'stop-disk', value: { fault: 'full', nodes } });
    expect(stopped.value.verified).toBe(true);
    // Recovery retries every 250 ms; give it a little.
    let reply: PutReply | undefined;
    for (let i = 0; i < 40 && !reply; i++) reply = await put('e1', 'after').catch(() => new Promise<undefined>((r) => setTimeout(r, 100)));
    expect(reply).toBeDefined();
    const logs = await cluster.logs('n1', { tailLines: 50 });
    expect(logs).toContain('writes are refused');
    expect(logs).toMatch(/the log recovered into generation \d+/);
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });

  it('failing fsync: no acknowledgement, then recovery; a power loss keeps every acknowledged write', async () => {
    const pkg = diskPackage({ nodes });
    await pkg.nemesis.setup(cluster);
    await put('e2', 'acked');
    await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'eio-fsync', nodes } });
    const failed = await putError('e2', 'failed');
    expect([9, 10]).toContain(failed.code);
    await pkg.nemesis.invoke({ f: 'stop-disk', value: { fault: 'eio-fsync', nodes } });
    let reply: PutReply | undefined;
    for (let i = 0; i < 40 && !reply; i++) reply = await put('e3', 'acked').catch(() => new Promise<undefined>((r) => setTimeout(r, 100)));
    expect(reply).toBeDefined();
    const crash = await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'lose-unsynced', nodes } });
    expect(crash.value.verified).toBe(true);
    expect(await cluster.state('n1')).toBe('stopped');
    const back = await pkg.nemesis.invoke({ f: 'stop-disk', value: { fault: 'lose-unsynced', nodes } });
    expect(back.value.verified).toBe(true);
    expect((await get('e1')).entity?.components[0]?.value).toBe('after');
    expect((await get('e2')).entity?.components[0]?.value).toBe('acked');
    expect((await get('e3')).entity?.components[0]?.value).toBe('acked');
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });

  it('a stop with crashAtStop ends a failing fsync with a power loss and a restart; an acknowledged write survives it', async () => {
    const pkg = diskPackage({ nodes });
    await pkg.nemesis.setup(cluster);
    await put('e4', 'acked');
    await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'eio-fsync', nodes, crashAtStop: ['n1'] } });
    expect([9, 10]).toContain((await putError('e4', 'failed')).code);
    const stopped = await pkg.nemesis.invoke({ f: 'stop-disk', value: { fault: 'eio-fsync', nodes, crashAtStop: ['n1'] } });
    expect(stopped.value, JSON.stringify(stopped.value)).toMatchObject({ verified: true, crashAtStop: ['n1'], crashed: ['n1'], inForce: {} });
    // The restarted node mounted a fresh layer: nothing in force, and the failed write's fsync never reached the disk.
    expect((stopped.value.layer as Record<string, Record<string, number>>).n1).toMatchObject({ eio_fsync: 0, failed_fsyncs: 0 });
    expect(await cluster.state('n1')).toBe('running');
    expect((await get('e4')).entity?.components[0]?.value).toBe('acked');
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });

  it('a stop that finds its node paused clears the layer when the node is resumed', async () => {
    const pkg = diskPackage({ nodes });
    await pkg.nemesis.setup(cluster);
    await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'full', nodes } });
    await cluster.pause('n1');
    const stopped = await pkg.nemesis.invoke({ f: 'stop-disk', value: { fault: 'full', nodes } });
    expect(stopped.value).toMatchObject({ excluded: { n1: 'paused' }, verified: false });
    const back = await cluster.unpause('n1');
    expect(back.reapplied.disk).toMatchObject({ node: 'n1', cleared: true, verified: true });
    const status = parseLayerStatus((await cluster.exec('n1', ['faultline-diskfs', 'ctl', '/run/faultline-diskfs.sock', 'status'])).stdout);
    expect(status.enospc).toBe(0);
    expect((await pkg.nemesis.heal()).ok).toBe(true);
  });

  it('heal clears every fault and restarts a node a power loss left stopped', async () => {
    const pkg = diskPackage({ nodes });
    await pkg.nemesis.setup(cluster);
    await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'lose-unsynced', nodes } });
    const report = await pkg.nemesis.heal();
    expect(report.ok, report.errors.join('; ')).toBe(true);
    expect(await cluster.state('n1')).toBe('running');
    await pkg.nemesis.invoke({ f: 'start-disk', value: { fault: 'slow', nodes } });
    expect((await pkg.nemesis.heal()).ok).toBe(true);
    const status = parseLayerStatus((await cluster.exec('n1', ['faultline-diskfs', 'ctl', '/run/faultline-diskfs.sock', 'status'])).stdout);
    expect(status).toMatchObject({ enospc: 0, eio_write: 0, eio_fsync: 0, delay_fsync_ms: 0 });
  });
});
