/**
 * A listener's connection limits (pure), one rule for TCP and web: `maxClients` in all, `maxClientsPerAddress`
 * from one address (0 = no limit). Returns why a new client is turned away (the text its `! busy` notice and the
 * log carry), or '' when there is room. `fromAddress` is only counted when that limit is on.
 */
export function overLimit(
  limits: { maxClients: number; maxClientsPerAddress: number },
  taken: number,
  fromAddress: () => number,
  address: string,
): string {
  if (taken >= limits.maxClients) return `${limits.maxClients} clients are connected already (maxClients)`;
  if (limits.maxClientsPerAddress > 0 && fromAddress() >= limits.maxClientsPerAddress) {
    return `${limits.maxClientsPerAddress} connections from ${address} already (maxClientsPerAddress)`;
  }
  return '';
}
