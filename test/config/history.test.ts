import t from 'tap';
import { formatErrors, loadConfigText, type LoadResult } from '../../src/config/load.js';

function config(yaml: string) {
  const result: LoadResult = loadConfigText(yaml, 'c.yaml', {});
  if (!result.ok) throw new Error(formatErrors(result.errors));
  return result.config;
}

const tcp = (extra: string): string => `tcp:\n  - name: a\n    port: 2000\n${extra.replace(/^/gm, '    ')}\n`;

t.test('history defaults: 20 lines of the last 10 min where notices mark it, none where a program could not tell', (t) => {
  const c = config(`${tcp('')}web:\n  - name: w\n    port: 8080\n`);
  t.same([c.tcp[0]!.historyLines, c.tcp[0]!.historySeconds], [20, 600], 'lines framing with notices');
  t.same([c.web[0]!.historyLines, c.web[0]!.historySeconds], [20, 600], 'web: the page dims it');
  t.equal(config(tcp('framing: raw')).tcp[0]!.historyLines, 0, 'raw framing: none unless asked');
  t.equal(config(tcp('framing: length-prefixed')).tcp[0]!.historyLines, 0, 'length-prefixed: none unless asked');
  t.equal(config(tcp('notices: false')).tcp[0]!.historyLines, 0, 'notices: false: none unless asked');
  t.equal(config(tcp('mode: request\ncloseAfterReply: true')).tcp[0]!.historyLines, 0, 'closeAfterReply: the answer alone');
  t.equal(config(tcp('mode: request')).tcp[0]!.historyLines, 20, 'request mode otherwise: 20');
  t.equal(config(tcp('framing: length-prefixed\nhistoryLines: 5')).tcp[0]!.historyLines, 5, 'asked for: given');
  t.equal(config(tcp('historyLines: 0')).tcp[0]!.historyLines, 0, 'lines framing: 0 turns it off');
  t.end();
});

t.test('history keys are bounded', (t) => {
  const r = loadConfigText(tcp('historyLines: 100000\nhistorySeconds: -1'), 'c.yaml', {});
  t.notOk(r.ok);
  const text = r.ok ? '' : formatErrors(r.errors);
  t.match(text, /tcp\[0\]\.historyLines/);
  t.match(text, /tcp\[0\]\.historySeconds/);
  t.end();
});
