/**
 * How the gateway writes a network peer, in one place: the client list, kick targets, monitors' sender tags and
 * the transcript all show it this way, and `parseTarget` (src/control/targets.ts) reads it back. An IPv6
 * address goes in brackets, so its own colons cannot be mistaken for the port's (`[2001:db8::7]:40112`).
 */

/** `10.0.0.7`, `[2001:db8::7]`: an address as it goes before `:PORT` or into a URL. */
export function hostPart(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** `10.0.0.7:51234`, `[::1]:40112`. */
export function peerLabel(address: string, port: number): string {
  return `${hostPart(address)}:${port}`;
}
