import WebSocket from 'ws';
import { SUBPROTOCOL, type ActionResult, type Hello, type ServerMessage } from '../../src/web/protocol.js';

/**
 * A page's socket as a test sees it, without a browser: a ws client of a `web:` listener that keeps the device
 * text, every JSON message in order, and how the socket closed. Its handlers are on before the socket opens, so
 * a hello that arrives with the upgrade's answer is not missed.
 */
export class Tab {
  text = '';
  readonly messages: ServerMessage[] = [];
  closed: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.text += data.toString('utf8');
      else this.messages.push(JSON.parse(data.toString('utf8')) as ServerMessage);
      this.poke();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.poke();
    });
    ws.on('error', () => {});
  }

  /** Resolves once the socket is open; rejects with `HTTP <status>` when the upgrade is refused. */
  static open(url: string, headers: Record<string, string> = {}): Promise<Tab> {
    const ws = new WebSocket(url, SUBPROTOCOL, { headers });
    const tab = new Tab(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(tab));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** As a browser opens a page's socket: with the page's own Origin (http://host:port of the ws:// URL). */
  static openAsPage(url: string): Promise<Tab> {
    return Tab.open(url, { Origin: new URL(url).origin.replace('ws:', 'http:') });
  }

  get hello(): Hello | undefined {
    const m = this.messages[0];
    return m && 'hello' in m ? m.hello : undefined;
  }

  get notices(): string[] {
    return this.messages.flatMap((m) => ('notice' in m ? [m.notice] : []));
  }

  /** Monitor sockets: the answers to this socket's actions. */
  get replies(): ActionResult[] {
    return this.messages.flatMap((m) => ('reply' in m ? [m.reply] : []));
  }

  get lastAt(): number | undefined {
    const ats = this.messages.flatMap((m) => ('at' in m ? [m.at] : []));
    return ats[ats.length - 1];
  }

  /** Waits until `what` holds, looking again on every message and at least every 50 ms (for conditions outside
   * the tab); on timeout, throws with what the tab last got. */
  async until(what: (tab: Tab) => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!what(this)) {
      if (Date.now() > deadline) throw new Error(`timed out; text ${JSON.stringify(this.text.slice(-200))}, messages ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  private poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
