/**
 * Who is on the other end of a unix socket: SO_PEERCRED through libc (Node has no API for it), with koffi as
 * src/status/notify.ts uses it. The kernel fills in the credentials at connect(): a client cannot forge them.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

type Koffi = typeof import('koffi', { with: { 'resolution-mode': 'require' } });

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups (SO_PEERGROUPS, Linux 4.13+); null when the kernel could not say. */
  groups: number[] | null;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;
const MAX_GROUPS = 256;

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, length: number[]) => number;
let getsockopt: GetSockOpt | null = null;

/** The peer's pid/uid/gid, or an Error saying why they could not be read. */
export function peerCredentials(socket: Socket): PeerCredentials | Error {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return new Error('no file descriptor for the connection');
  try {
    if (!getsockopt) {
      const koffi = require('koffi') as Koffi;
      const libc = koffi.load('libc.so.6');
      getsockopt = libc.func('int getsockopt(int sockfd, int level, int optname, _Out_ void *optval, _Inout_ uint32_t *optlen)') as unknown as GetSockOpt;
    }
    const buf = Buffer.alloc(12);
    const len = [12];
    if (getsockopt!(fd, SOL_SOCKET, SO_PEERCRED, buf, len) !== 0) return new Error('getsockopt(SO_PEERCRED) failed');
    // The groups from the socket, not /proc/PID/status: the unit's ProtectProc=invisible hides other users'
    // processes from the daemon.
    const gbuf = Buffer.alloc(4 * MAX_GROUPS);
    const glen = [gbuf.length];
    let groups: number[] | null = null;
    if (getsockopt!(fd, SOL_SOCKET, SO_PEERGROUPS, gbuf, glen) === 0) {
      groups = [];
      for (let i = 0; i + 4 <= glen[0]!; i += 4) groups.push(gbuf.readUInt32LE(i));
    }
    return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8), groups };
  } catch (err) {
    return new Error(`cannot read peer credentials: ${(err as Error).message}`);
  }
}

/** The supplementary groups of a process (/proc/PID/status `Groups:`), where SO_PEERGROUPS is missing; [] when unreadable. */
export function groupsOf(pid: number): number[] {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = /^Groups:\t?(.*)$/m.exec(status)?.[1] ?? '';
    return line.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `alice` for uid 1000, from /etc/passwd; `uid 1000` when it has no entry. */
export function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0]!;
    }
  } catch {
    // fall through
  }
  return `uid ${uid}`;
}

/**
 * Root, the daemon's own user, or a member of the daemon's group may act; anyone else is refused. (The socket
 * file's 0660 mode already keeps others out; this holds even if the file's mode or group is changed.)
 */
export function mayControl(peer: PeerCredentials, self: { uid: number; gid: number }, groups: (pid: number) => number[] = groupsOf): boolean {
  if (peer.uid === 0 || peer.uid === self.uid || peer.gid === self.gid) return true;
  return (peer.groups ?? groups(peer.pid)).includes(self.gid);
}
