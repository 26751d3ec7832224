import t from 'tap';
import {
  ACTIVITY_FLASH,
  DOUBLE_BLINK,
  FAST_BLINK,
  LedDriver,
  OFF,
  ON,
  type Pattern,
  REFUSED_FLASH,
  SLOW_BLINK,
  describePattern,
  flashFor,
  patternsFor,
} from '../../src/status/led-patterns.js';
import type { StatusSnapshot } from '../../src/status/model.js';
import { FakeClock } from '../support/fake-clock.js';

const base: StatusSnapshot = { phase: 'running', reloadRejected: false, device: 'open', clients: 0, degraded: false };
const snap = (patch: Partial<StatusSnapshot>): StatusSnapshot => ({ ...base, ...patch });

/** A driver whose set() calls are recorded as `on@t` / `off@t`. */
function recorded(clock: FakeClock): { driver: LedDriver; calls: string[] } {
  const calls: string[] = [];
  const driver = new LedDriver(clock, (on) => calls.push(`${on ? 'on' : 'off'}@${clock.now()}`));
  return { driver, calls };
}

t.test('ready: blinking while starting or reloading, on while running, double blink after a rejected reload, off when stopped', (t) => {
  t.same(patternsFor(snap({ phase: 'starting' })).ready, FAST_BLINK);
  t.same(patternsFor(snap({ phase: 'reloading' })).ready, FAST_BLINK);
  t.same(patternsFor(snap({ phase: 'reloading', reloadRejected: true })).ready, FAST_BLINK, 'a new reload shows as reloading');
  t.same(patternsFor(snap({ phase: 'running' })).ready, ON);
  t.same(patternsFor(snap({ phase: 'running', reloadRejected: true })).ready, DOUBLE_BLINK);
  t.same(patternsFor(snap({ phase: 'stopping' })).ready, OFF);
  t.same(patternsFor(snap({ phase: 'stopped' })).ready, OFF);
  t.same(patternsFor(snap({ device: 'failed' })).ready, ON, 'without folding, ready ignores the device');
  t.end();
});

t.test('ready alone (serial not wired) tells stopped, running without device and running with device apart', (t) => {
  const fold = { foldDevice: true };
  t.same(patternsFor(snap({ phase: 'stopped' }), fold).ready, OFF);
  t.same(patternsFor(snap({ device: 'waiting' }), fold).ready, SLOW_BLINK);
  t.same(patternsFor(snap({ device: 'failed' }), fold).ready, SLOW_BLINK);
  t.same(patternsFor(snap({ device: 'stopped' }), fold).ready, SLOW_BLINK);
  t.same(patternsFor(snap({ device: 'open' }), fold).ready, ON);
  t.same(patternsFor(snap({ device: 'open', reloadRejected: true }), fold).ready, DOUBLE_BLINK);
  t.same(patternsFor(snap({ device: 'waiting', reloadRejected: true }), fold).ready, SLOW_BLINK, 'no device wins');
  t.same(patternsFor(snap({ phase: 'starting', device: 'waiting' }), fold).ready, FAST_BLINK);
  t.end();
});

t.test('serial, clients, activity and error follow the table', (t) => {
  t.same(patternsFor(snap({ device: 'open' })).serial, ON);
  t.same(patternsFor(snap({ device: 'waiting' })).serial, SLOW_BLINK);
  t.same(patternsFor(snap({ device: 'failed' })).serial, FAST_BLINK);
  t.same(patternsFor(snap({ device: 'stopped' })).serial, OFF);
  t.same(patternsFor(snap({ clients: 0 })).clients, OFF);
  t.same(patternsFor(snap({ clients: 1 })).clients, ON);
  t.same(patternsFor(snap({ clients: 7 })).clients, ON);
  t.same(patternsFor(snap({ clients: 7, degraded: true })).activity, OFF, 'activity only flashes');
  t.same(patternsFor(snap({ degraded: true })).error, ON);
  t.same(patternsFor(snap({ degraded: false })).error, OFF);
  t.same(flashFor('activity'), { led: 'activity', flash: ACTIVITY_FLASH });
  t.same(flashFor('refused'), { led: 'clients', flash: REFUSED_FLASH });
  t.end();
});

t.test('patterns one LED can show differ by at least 2:1 in period', (t) => {
  const period = (p: Pattern): number =>
    p.kind === 'blink' ? p.onMs + p.offMs : p.kind === 'double' ? 2 * p.onMs + p.gapMs + p.pauseMs : Infinity;
  t.ok(period(SLOW_BLINK) / period(FAST_BLINK) >= 2, 'slow vs fast');
  t.ok(DOUBLE_BLINK.kind === 'double' && DOUBLE_BLINK.pauseMs >= 4 * DOUBLE_BLINK.onMs, 'double blink has a long pause');
  t.equal(describePattern(SLOW_BLINK), 'blink 1000/1000');
  t.equal(describePattern(FAST_BLINK), 'blink 125/125');
  t.equal(describePattern(DOUBLE_BLINK), 'double 150/150/1550');
  t.equal(describePattern(ON), 'on');
  t.end();
});

t.test('driver: starts dark, steady patterns need no timer', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  t.same(calls, ['off@0']);
  t.equal(clock.pending, 0);
  clock.advance(50);
  driver.play(ON);
  t.same(calls, ['off@0', 'on@50']);
  t.equal(clock.pending, 0);
  driver.play(ON);
  clock.advance(1000);
  t.same(calls, ['off@0', 'on@50'], 'same pattern again: no call');
  driver.play(OFF);
  t.same(calls, ['off@0', 'on@50', 'off@1050']);
  driver.dispose();
  t.end();
});

t.test('driver: blink edges at exact times, one timer at most', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  driver.play(FAST_BLINK);
  for (let i = 0; i < 8; i++) {
    t.ok(clock.pending <= 1);
    clock.advance(125);
  }
  t.same(calls, ['on@0', 'off@125', 'on@250', 'off@375', 'on@500', 'off@625', 'on@750', 'off@875', 'on@1000']);
  driver.dispose();
  t.equal(clock.pending, 0);
  t.same(calls.at(-1), 'off@1000');
  t.end();
});

t.test('driver: double blink is on 150, off 150, on 150, off 1550', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  driver.play(DOUBLE_BLINK);
  clock.advance(4000);
  t.same(calls, ['on@0', 'off@150', 'on@300', 'off@450', 'on@2000', 'off@2150', 'on@2300', 'off@2450', 'on@4000']);
  driver.dispose();
  t.end();
});

t.test('driver: re-applying the playing pattern keeps its phase; a new one starts its cycle now', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  driver.play(SLOW_BLINK);
  clock.advance(700);
  driver.play({ kind: 'blink', onMs: 1000, offMs: 1000 });
  clock.advance(600);
  t.same(calls, ['on@0', 'off@1000'], 'an equal pattern object changes nothing');
  driver.play(FAST_BLINK);
  clock.advance(300);
  t.same(calls, ['on@0', 'off@1000', 'on@1300', 'off@1425', 'on@1550']);
  t.equal(clock.pending, 1);
  driver.dispose();
  t.equal(clock.pending, 0);
  t.end();
});

t.test('driver: one traffic event is one 30 ms flash', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  clock.advance(10);
  driver.flash(ACTIVITY_FLASH);
  clock.advance(500);
  t.same(calls, ['off@0', 'on@10', 'off@40']);
  t.equal(clock.pending, 0, 'nothing armed once the flash is over');
  driver.dispose();
  t.end();
});

t.test('driver: a stream of events flickers at one flash per 100 ms, never steady on', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  const stop = clock.setInterval(() => driver.flash(ACTIVITY_FLASH), 7);
  clock.advance(1000);
  stop();
  clock.advance(1000);
  // First event at 7; flashes then start every 100 ms, each lit for 30 ms.
  const expected: string[] = [];
  for (let at = 7; at < 1000; at += 100) expected.push(`on@${at}`, `off@${at + 30}`);
  // The events between 907 and 1000 ask for one more flash when the interval ends.
  expected.push('on@1007', 'off@1037');
  t.same(calls, expected);
  t.equal(clock.pending, 0);
  driver.dispose();
  t.end();
});

t.test('driver: an event during the rate-limit interval gives exactly one more flash', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  driver.flash(ACTIVITY_FLASH);
  clock.advance(50);
  driver.flash(ACTIVITY_FLASH);
  driver.flash(ACTIVITY_FLASH);
  clock.advance(500);
  t.same(calls, ['on@0', 'off@30', 'on@100', 'off@130']);
  driver.dispose();
  t.end();
});

t.test('driver: a refused connection winks a lit clients LED dark for 200 ms', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  driver.play(ON);
  clock.advance(1000);
  driver.flash(REFUSED_FLASH);
  clock.advance(100);
  driver.flash(REFUSED_FLASH);
  clock.advance(1000);
  t.same(calls, ['off@0', 'on@0', 'off@1000', 'on@1200', 'off@1500', 'on@1700']);
  driver.dispose();
  t.end();
});

t.test('driver: a flash over a blinking pattern inverts it, and the blink keeps its phase', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  driver.play(SLOW_BLINK);
  clock.advance(1500);
  driver.flash(ACTIVITY_FLASH);
  clock.advance(600);
  t.same(calls, ['on@0', 'off@1000', 'on@1500', 'off@1530', 'on@2000']);
  driver.dispose();
  t.end();
});

t.test('driver: clearFlash ends a flash at once and drops one waiting for the rate limit', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  driver.flash(ACTIVITY_FLASH);
  clock.advance(10);
  driver.flash(ACTIVITY_FLASH);
  driver.clearFlash();
  clock.advance(1000);
  t.same(calls, ['off@0', 'on@0', 'off@10']);
  t.equal(clock.pending, 0);
  driver.dispose();
  t.end();
});

t.test('driver: dispose turns the LED off, disarms, and ignores later calls', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  driver.play(FAST_BLINK);
  clock.advance(60);
  driver.flash(ACTIVITY_FLASH);
  driver.dispose();
  t.equal(clock.pending, 0);
  t.same(calls.at(-1), 'off@60');
  const n = calls.length;
  driver.play(ON);
  driver.flash(ACTIVITY_FLASH);
  driver.dispose();
  clock.advance(5000);
  t.equal(calls.length, n);
  t.end();
});

t.test('driver: status transitions end to end (starting -> running -> reload rejected -> stopped)', (t) => {
  const clock = new FakeClock();
  const { driver, calls } = recorded(clock);
  calls.length = 0;
  const steps: [StatusSnapshot, number][] = [
    [snap({ phase: 'starting' }), 300],
    [snap({ phase: 'running' }), 500],
    [snap({ phase: 'reloading' }), 200],
    [snap({ phase: 'running', reloadRejected: true }), 2100],
    [snap({ phase: 'stopped' }), 100],
  ];
  for (const [s, ms] of steps) {
    driver.play(patternsFor(s).ready);
    clock.advance(ms);
  }
  // Becoming running at 300 while the blink is lit, and reloading at 800 (a cycle starts lit) need no
  // call; reloading ends dark at 1000, when the double blink starts.
  t.same(calls, [
    'on@0', 'off@125', 'on@250', // starting
    'off@925', // reloading from 800
    'on@1000', 'off@1150', 'on@1300', 'off@1450', 'on@3000', // rejected from 1000, every 2 s
    'off@3100', // stopped
  ]);
  t.equal(clock.pending, 0);
  driver.dispose();
  t.end();
});
