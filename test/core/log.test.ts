import t from 'tap';
import { createLog } from '../../src/core/log.js';

function sinks() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, o: { write: (l: string) => void out.push(l) }, e: { write: (l: string) => void err.push(l) } };
}

t.test('under journald: syslog priority prefixes, no timestamps, so journalctl -p warning works', (t) => {
  const s = sinks();
  const log = createLog({ level: 'debug', journald: true, out: s.o, err: s.e });
  log.error('e');
  log.warn('w');
  log.info('i');
  log.debug('d');
  t.same(s.err, ['<3>e\n', '<4>w\n']);
  t.same(s.out, ['<6>i\n', '<7>d\n']);
  // journald files each line of the stream separately: the details under an error stay at err.
  log.error('reload rejected:\nserial.baudRate: not a number');
  t.equal(s.err[2], '<3>reload rejected:\n<3>  serial.baudRate: not a number\n');
  t.end();
});

t.test('on a terminal: a timestamp and the level; log.level filters; continuation lines are indented', (t) => {
  const s = sinks();
  const log = createLog({ level: 'info', journald: false, out: s.o, err: s.e, now: () => new Date(0) });
  log.debug('hidden');
  log.info('two\nlines');
  log.setLevel('error');
  log.warn('hidden too');
  t.same(s.out, ['1970-01-01T00:00:00.000Z info    two\n  lines\n']);
  t.same(s.err, []);
  t.ok(log.enabled('error'));
  t.notOk(log.enabled('warning'));
  t.end();
});
