/**
 * One model of the gateway's state that the LEDs, systemd STATUS= and logs all read. Pure: the daemon feeds it
 * facts; readers take snapshots or subscribe to changes and to momentary events.
 */
export type Phase = 'starting' | 'running' | 'reloading' | 'stopping' | 'stopped';
export type DeviceState = 'open' | 'waiting' | 'failed' | 'stopped';

export interface StatusSnapshot {
  phase: Phase;
  /** The last reload was rejected: the previous config still runs. Cleared by the next good reload. */
  reloadRejected: boolean;
  device: DeviceState;
  /** TCP clients plus UDP subscribers. */
  clients: number;
  /** Lines are being dropped or refused, or the device queue is full: cleared after a quiet period. */
  degraded: boolean;
  /** The class transcript: off (not enabled), on, or stopped by a disk fault (for the dashboard's mark). */
  transcript?: 'off' | 'on' | 'stopped';
}

/** Momentary things worth a blink: traffic either way, a refused connection. */
export type StatusEvent = 'activity' | 'refused';

export interface StatusListener {
  changed(snapshot: Readonly<StatusSnapshot>): void;
  event(kind: StatusEvent): void;
}

export class StatusModel {
  private state: StatusSnapshot = { phase: 'starting', reloadRejected: false, device: 'stopped', clients: 0, degraded: false };
  private readonly listeners = new Set<StatusListener>();

  get snapshot(): Readonly<StatusSnapshot> {
    return this.state;
  }

  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    listener.changed(this.state);
    return () => this.listeners.delete(listener);
  }

  /** Merges facts; listeners hear about it only when something actually changed. */
  update(patch: Partial<StatusSnapshot>): void {
    let changed = false;
    for (const key of Object.keys(patch) as (keyof StatusSnapshot)[]) {
      if (patch[key] !== undefined && patch[key] !== this.state[key]) changed = true;
    }
    if (!changed) return;
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l.changed(this.state);
  }

  emit(kind: StatusEvent): void {
    for (const l of this.listeners) l.event(kind);
  }
}
