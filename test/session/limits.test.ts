import t from 'tap';
import { overLimit } from '../../src/session/limits.js';

/** The connection limits TCP and web listeners share. */

t.test('maxClients first, then maxClientsPerAddress (0 = none, and then not even counted)', (t) => {
  let counted = 0;
  const from = (n: number) => () => (counted++, n);
  t.equal(overLimit({ maxClients: 2, maxClientsPerAddress: 0 }, 1, from(9), '10.0.0.7'), '', 'room');
  t.equal(counted, 0, 'no per-address limit: nobody counted');
  t.equal(overLimit({ maxClients: 2, maxClientsPerAddress: 0 }, 2, from(0), '10.0.0.7'), '2 clients are connected already (maxClients)');
  t.equal(overLimit({ maxClients: 10, maxClientsPerAddress: 2 }, 3, from(1), '10.0.0.7'), '');
  t.equal(overLimit({ maxClients: 10, maxClientsPerAddress: 2 }, 3, from(2), '10.0.0.7'), '2 connections from 10.0.0.7 already (maxClientsPerAddress)');
  t.end();
});
