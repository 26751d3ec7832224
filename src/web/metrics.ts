import type { ApiStatus } from './protocol.js';

/**
 * GET /metrics: the status snapshot in the Prometheus text exposition format (version 0.0.4). Written by hand:
 * about twenty series from one snapshot need no registry, and prom-client would add its dependencies and its
 * default process collectors to a daemon that must stay small on a Pi. Pure.
 */
export function formatMetrics(s: ApiStatus, extra: { linesOut: number; bytesOut: number }): string {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [labels: Record<string, string>, value: number][]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  metric('serialgw_build_info', 'gauge', 'Version of the running gateway.', [[{ version: s.version }, 1]]);
  metric('serialgw_uptime_seconds', 'gauge', 'Seconds since the gateway started.', [[{}, s.uptimeS]]);
  metric(
    'serialgw_device_state',
    'gauge',
    'The serial device state: 1 for the current one.',
    (['open', 'away', 'failed', 'stopped'] as const).map((st) => [{ state: st }, s.device.state === st ? 1 : 0]),
  );
  metric('serialgw_device_reconnects_total', 'counter', 'Times the device came back after being away.', [[{}, s.counters.reconnects]]);
  metric(
    'serialgw_clients',
    'gauge',
    'Connected clients per listener (UDP: peers holding a lease).',
    s.listeners.map((l) => [{ listener: l.name, kind: l.kind }, l.clients]),
  );
  metric('serialgw_device_lines_total', 'counter', 'Lines framed from the device.', [[{}, s.counters.linesFromDevice]]);
  metric('serialgw_device_bytes_total', 'counter', 'Bytes read from the device.', [[{}, s.counters.bytesFromDevice]]);
  metric('serialgw_client_lines_total', 'counter', 'Client lines written to the device.', [[{}, s.counters.linesToDevice]]);
  metric('serialgw_sent_lines_total', 'counter', 'Device lines delivered to connected TCP and web clients (summed over clients).', [[{}, extra.linesOut]]);
  metric('serialgw_sent_bytes_total', 'counter', 'Device bytes delivered to connected TCP and web clients (summed over clients).', [[{}, extra.bytesOut]]);
  metric('serialgw_dropped_lines_total', 'counter', 'Device lines a client missed because it was too slow (summed over clients).', [[{}, s.counters.dropped]]);
  metric('serialgw_refused_lines_total', 'counter', 'Client lines refused because the device queue was full.', [[{}, s.counters.refused]]);
  metric('serialgw_refused_connections_total', 'counter', 'Connections refused (allow lists, maxClients).', [[{}, s.counters.connectionsRefused]]);
  metric('serialgw_ring_bytes', 'gauge', 'Size of the device line ring.', [[{}, s.ring.bytes]]);
  metric('serialgw_ring_used_bytes', 'gauge', 'Bytes of the ring holding lines.', [[{}, s.ring.usedBytes]]);
  metric('serialgw_degraded', 'gauge', '1 while lines are being dropped or refused (the error LED).', [[{}, s.degraded ? 1 : 0]]);
  metric(
    'serialgw_transcript_state',
    'gauge',
    'The class transcript: 1 for the current state (stopped: a disk fault stopped it; the gateway goes on).',
    (['on', 'off', 'stopped'] as const).map((st) => [{ state: st }, s.transcript.state === st ? 1 : 0]),
  );
  metric('serialgw_last_reload_ok', 'gauge', '1 if the last reload applied, 0 if it was rejected (absent before one).', s.reload ? [[{}, s.reload.ok ? 1 : 0]] : []);
  return `${out.join('\n')}\n`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
