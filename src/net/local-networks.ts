import { networkInterfaces } from 'node:os';
import { networkOf } from './allow.js';

/**
 * The networks this machine has an address on (the lab LAN the Pi is plugged into, loopback included), as
 * ranges for `trusted: [local-networks]`. Read at each call: a reload sees a network that came up since.
 */
export function localNetworks(): string[] {
  const out = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      const net = a.cidr ? networkOf(a.cidr) : null;
      if (net) out.add(net);
    }
  }
  return [...out];
}
