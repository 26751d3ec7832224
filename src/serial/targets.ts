import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SerialPort } from 'serialport';
import type { Clock } from '../core/clock.js';
import type { LabBoxConfig, SerialConfig } from '../config/types.js';
import type { SerialSettings } from './device-port.js';
import type { LinkTarget } from './serial-link.js';
import { openSerialPort } from './serialport-port.js';
import { createSimulatedLabBox } from './sim-port.js';

export const SIM_LABBOX = 'sim:labbox';

export function settingsOf(cfg: SerialConfig): SerialSettings {
  return { baudRate: cfg.baudRate, dataBits: cfg.dataBits, parity: cfg.parity, stopBits: cfg.stopBits, flowControl: cfg.flowControl };
}

/** `115200 8N1`, plus the flow control when there is one. */
export function describeSettings(cfg: SerialConfig): string {
  const flow = cfg.flowControl === 'none' ? '' : ` ${cfg.flowControl}`;
  return `${cfg.baudRate} ${cfg.dataBits}${cfg.parity.charAt(0).toUpperCase()}${cfg.stopBits}${flow}`;
}

/** Where the link finds its device: the simulator, a fixed path, or a USB identity looked up on every attempt. */
export function linkTargetFor(cfg: SerialConfig, labbox: LabBoxConfig, clock: Clock, list: () => Promise<PortInfo[]> = listPorts): LinkTarget {
  const settings = settingsOf(cfg);
  const onOpen = { dtr: cfg.dtrOnOpen, rts: cfg.rtsOnOpen };
  if (cfg.path === SIM_LABBOX) {
    return {
      describe: SIM_LABBOX,
      resolve: async () => SIM_LABBOX,
      create: (_path, handlers) => createSimulatedLabBox({ studentId: labbox.studentId, name: labbox.name, settings }, handlers, clock),
    };
  }
  if (cfg.path !== '') {
    return {
      describe: cfg.path,
      resolve: async () => cfg.path,
      create: (path, handlers) => openSerialPort(path, settings, handlers, onOpen),
      present: existsSync,
    };
  }
  const m = cfg.match;
  const describe = `usb ${m.vendorId || '*'}:${m.productId || '*'}${m.serialNumber ? ` serial ${m.serialNumber}` : ''}`;
  // An empty match means "the USB adapter", not "any port": a Pi's own UARTs (ttyAMA0, ttyS0: the Bluetooth
  // module or the serial console) are listed too, carry no USB ids, and must never be opened by accident.
  const anyUsb = !m.vendorId && !m.productId && !m.serialNumber;
  return {
    describe,
    resolve: async () => {
      const ports = await list();
      const hit = ports.find(
        (p) =>
          (!anyUsb || !!p.vendorId) &&
          (!m.vendorId || p.vendorId?.toLowerCase() === m.vendorId.toLowerCase()) &&
          (!m.productId || p.productId?.toLowerCase() === m.productId.toLowerCase()) &&
          (!m.serialNumber || p.serialNumber === m.serialNumber),
      );
      return hit ? hit.path : null;
    },
    create: (path, handlers) => openSerialPort(path, settings, handlers, onOpen),
    present: existsSync,
  };
}

export interface PortInfo {
  path: string;
  manufacturer?: string | undefined;
  vendorId?: string | undefined;
  productId?: string | undefined;
  serialNumber?: string | undefined;
}

/**
 * SerialPort.list() on Linux spawns `udevadm info -e` and, where udevadm is missing, the spawn error escapes as
 * an uncaught exception that would kill the daemon; so udevadm's presence is checked first.
 */
export async function listPorts(): Promise<PortInfo[]> {
  try {
    execFileSync('udevadm', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('udevadm not found: listing ports by USB identity needs udev (apt-get install udev)');
  }
  const ports = await SerialPort.list();
  return ports.map((p) => ({
    path: p.path,
    manufacturer: p.manufacturer,
    vendorId: p.vendorId,
    productId: p.productId,
    serialNumber: p.serialNumber,
  }));
}
