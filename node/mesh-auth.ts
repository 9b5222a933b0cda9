// Mesh authentication: how a peer proves it belongs to the cluster. Every node of a cluster is started
// with the same secret (FAULTLINE_MESH_SECRET; the harness makes a fresh one per run). A mesh call
// carries two metadata headers: the sender's node id and a token, HMAC-SHA256(secret, sender), which
// only a holder of the secret can compute. The receiver checks on every call (Relay once per stream,
// when it opens) that the sender is one of its --peers and that the token is that sender's, comparing
// in constant time, and that every message names the same sender. A client that reaches the port but
// does not hold the secret cannot speak Mesh at all (UNAUTHENTICATED).
//
// The token binds the sender id, so it cannot be reused to speak as another node, but it is the same on
// every call: the mesh is not encrypted, and an attacker who can read peer-to-peer traffic can replay
// it (node/README.md, threat model). The secret itself never leaves the node and is never logged.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Metadata, status } from '@grpc/grpc-js';
import { RpcError, quote } from './validate.ts';

export const MESH_SENDER_HEADER = 'faultline-mesh-sender';
export const MESH_TOKEN_HEADER = 'faultline-mesh-token';
/** Shortest secret accepted: 16 characters (the harness uses 64 hex digits, 256 bits). */
export const MIN_MESH_SECRET_CHARS = 16;

/** The token that proves `sender` holds the cluster's secret. */
export function meshToken(secret: string, sender: string): string {
  return createHmac('sha256', secret).update(`faultline mesh v1\u0000${sender}`).digest('base64url');
}

/** Metadata for a mesh call made by `sender` (also used by tests that speak Mesh as a peer). */
export function meshMetadata(secret: string, sender: string): Metadata {
  const metadata = new Metadata();
  metadata.set(MESH_SENDER_HEADER, sender);
  metadata.set(MESH_TOKEN_HEADER, meshToken(secret, sender));
  return metadata;
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

export class MeshAuth {
  private readonly self: string;
  private readonly secret: string;
  /** sha256 of each peer's token: comparing fixed-length digests keeps the check constant-time. */
  private readonly expected = new Map<string, Buffer>();

  constructor(self: string, peers: readonly string[], secret: string) {
    this.self = self;
    this.secret = secret;
    for (const peer of peers) this.expected.set(peer, digest(meshToken(secret, peer)));
  }

  /** Metadata for this node's outgoing mesh calls (a fresh object per call: grpc-js may keep it). */
  outgoing(): Metadata {
    return meshMetadata(this.secret, this.self);
  }

  /**
   * The authenticated sender of an incoming mesh call, or an RpcError: UNAUTHENTICATED without a valid
   * token, PERMISSION_DENIED for a sender that is not one of this node's peers.
   */
  check(metadata: Metadata): string {
    const sender = metadata.get(MESH_SENDER_HEADER)[0];
    const token = metadata.get(MESH_TOKEN_HEADER)[0];
    if (typeof sender !== 'string' || typeof token !== 'string' || sender === '' || token === '') {
      throw new RpcError(
        status.UNAUTHENTICATED,
        `mesh calls must carry the ${MESH_SENDER_HEADER} and ${MESH_TOKEN_HEADER} headers, which only nodes holding this cluster's FAULTLINE_MESH_SECRET can make; the Store service is the client API`,
      );
    }
    const expected = this.expected.get(sender);
    // Hash the offered token even for an unknown sender, so the answer takes the same time either way.
    const offered = digest(token);
    if (!expected) throw new RpcError(status.PERMISSION_DENIED, `sender ${quote(sender)} is not in this node's --peers list`);
    if (!timingSafeEqual(offered, expected)) {
      throw new RpcError(status.UNAUTHENTICATED, `the mesh token for sender ${quote(sender)} is wrong: the sender does not hold this cluster's FAULTLINE_MESH_SECRET`);
    }
    return sender;
  }
}
