/**
 * The config of cases that only need the device on `link` and one plain listener `lab` on `port`: fast
 * reconnects (the cases unplug and kill), telnet off, warnings only.
 */
export function labConfig(link: string, port: number): string {
  return `serial:
  path: ${link}
  reconnectMinMs: 20
  reconnectMaxMs: 100
lines:
  idleFlushMs: 100
tcp:
  - name: lab
    host: 127.0.0.1
    port: ${port}
    telnet: off
udp: []
log:
  level: warning
`;
}
