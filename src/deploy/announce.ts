/**
 * What deploy/install.sh derives from the installed config, so nothing it writes or prints names a port the
 * config does not have: the Avahi (DNS-SD) service file, the `dtoverlay=gpio-led` lines for the boot config,
 * and the lines students type to connect. Pure: config and addresses in, text out.
 */
import { LED_NAMES, type GatewayConfig } from '../config/types.js';
import { hostPart } from '../net/peer.js';

/** A web listener, as a config with a `web:` list has one (only name, host and port matter here). */
export interface WebListenerLike {
  name: string;
  host: string;
  port: number;
}

/** The listener lists this module reads; `web` is optional so configs without web listeners fit. */
export type ListenersConfig = Pick<GatewayConfig, 'tcp' | 'udp'> & { web?: readonly WebListenerLike[] };

export interface Announcement {
  type: string;
  port: number;
  /** The listener it stands for, for the comment in the file. */
  listener: string;
}

/** Only listeners other machines can reach are announced: one bound to loopback is this machine's only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * One DNS-SD service per reachable listener: TCP ones as _serial-gateway._tcp and, when they speak telnet,
 * _telnet._tcp too; web ones as _http._tcp. UDP is not announced (no client browses for it).
 */
export function announcements(config: ListenersConfig): Announcement[] {
  const out: Announcement[] = [];
  for (const l of config.tcp) {
    if (isLoopback(l.host)) continue;
    out.push({ type: '_serial-gateway._tcp', port: l.port, listener: l.name });
    if (l.telnet !== 'off' && l.framing === 'lines') out.push({ type: '_telnet._tcp', port: l.port, listener: l.name });
  }
  for (const l of config.web ?? []) {
    if (isLoopback(l.host)) continue;
    out.push({ type: '_http._tcp', port: l.port, listener: l.name });
  }
  return out;
}

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** /etc/avahi/services/serial-gateway.service for the config; undefined when there is nothing to announce. */
export function avahiServiceFile(config: ListenersConfig): string | undefined {
  const services = announcements(config);
  if (services.length === 0) return undefined;
  const body = services
    .map((s) => `  <service>\n    <!-- listener ${xmlEscape(s.listener)} -->\n    <type>${s.type}</type>\n    <port>${s.port}</port>\n  </service>\n`)
    .join('');
  return `<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<!--
  Announces the gateway on the LAN (mDNS/DNS-SD). Written by deploy/install.sh from the listeners in
  /etc/serial-gateway/config.yaml: run install.sh again after changing their ports. Avahi reloads this
  folder by itself.
  Browse with: avahi-browse -rt _serial-gateway._tcp
-->
<service-group>
  <name replace-wildcards="yes">%h serial gateway</name>
${body}</service-group>
`;
}

/**
 * The boot-config lines that make the kernel LED class entries for the wired LEDs (Raspberry Pi firmware's
 * gpio-led overlay). Empty when LEDs are off or none is wired; an LED pinned to another backend is left out.
 */
export function gpioLedOverlays(config: Pick<GatewayConfig, 'leds'>): string[] {
  if (!config.leds.enabled) return [];
  const lines: string[] = [];
  for (const name of LED_NAMES) {
    const led = config.leds[name];
    if (led.pin < 0 || (led.backend !== 'auto' && led.backend !== 'ledclass')) continue;
    lines.push(`dtoverlay=gpio-led,gpio=${led.pin},label=${led.label},trigger=none${led.activeLow ? ',active_low=1' : ''}`);
  }
  return lines;
}


/** The addresses a client can use for a listener bound to `host`, given this machine's name and addresses. */
export function reachableAs(host: string, hostname: string, addresses: readonly string[]): string[] {
  if (isLoopback(host)) return [host === 'localhost' ? '127.0.0.1' : host];
  const ipv4 = addresses.filter((a) => !a.includes(':'));
  const wildcard = host === '0.0.0.0' ? ipv4 : host === '::' ? addresses : undefined;
  return [`${hostname}.local`, ...(wildcard ?? [host])];
}

/** The exact commands students type, one per listener and address. */
export function connectLines(config: ListenersConfig, hostname: string, addresses: readonly string[]): string[] {
  const lines: string[] = [];
  for (const l of config.tcp) {
    const where = isLoopback(l.host) ? ' (this machine only)' : '';
    lines.push(`TCP listener ${l.name} (${l.mode}, ${l.framing})${where}:`);
    for (const a of reachableAs(l.host, hostname, addresses)) {
      lines.push(`  nc ${a} ${l.port}`);
      if (l.telnet !== 'off' && l.framing === 'lines') lines.push(`  telnet ${a} ${l.port}`);
    }
  }
  for (const l of config.udp) {
    const where = isLoopback(l.host) ? ' (this machine only)' : '';
    lines.push(`UDP listener ${l.name} (${l.mode})${where}:`);
    for (const a of reachableAs(l.host, hostname, addresses)) lines.push(`  nc -u ${a} ${l.port}`);
  }
  for (const l of config.web ?? []) {
    const where = isLoopback(l.host) ? ' (this machine only)' : '';
    lines.push(`Web listener ${l.name}${where}:`);
    for (const a of reachableAs(l.host, hostname, addresses)) lines.push(`  http://${hostPart(a)}:${l.port}/`);
  }
  return lines;
}
