import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clientRecords,
  compareStatements,
  countByCommand,
  labThreads,
  parseGeneralLog,
} from '../../../src/lab/mariadb-log';
import { parseSysbench } from '../../../src/lab/mysql-clients';

// a general log as mariadbd 10.11 writes it (taken from a lab run), with a restart in the middle
const LOG = [
  'mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:',
  'Tcp port: 3306  Unix socket: /tmp/x/mysqld.sock',
  'Time\t\t    Id Command\tArgument',
  '261201 23:26:20\t     3 Connect\troot@localhost on  using Socket',
  '\t\t     3 Query\tSET SESSION sql_log_off=1',
  '\t\t     4 Connect\ttc@198.18.1.2 on tcdb using TCP/IP',
  '\t\t     4 Query\tselect * from t',
  'where a=1',
  '261201 23:26:21\t     4 Prepare\tSELECT v FROM kv WHERE id = ?',
  '\t\t     4 Execute\tSELECT v FROM kv WHERE id = 7',
  '\t\t     4 Close stmt\t',
  '\t\t     4 Quit\t',
  'mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:',
  'Tcp port: 3306  Unix socket: /tmp/x/mysqld.sock',
  'Time\t\t    Id Command\tArgument',
  "\t\t     5 Connect\tAccess denied for user 'tc'@'198.18.1.2' (using password: YES)",
  '\t\t     6 Connect\ttc@198.18.1.2 on tcdb using TCP/IP',
  '\t\t     6 Execute\tSELECT v FROM kv WHERE id = 7',
  '\t\t     6 Qu', // being written
].join('\n');

test('parseGeneralLog: records, multi-line queries, header lines again after a restart, a partial last line', () => {
  const p = parseGeneralLog(LOG);
  assert.equal(p.badLines, 0);
  assert.deepEqual(
    p.records.map((r) => [r.thread, r.command, r.argument]),
    [
      [3, 'Connect', 'root@localhost on  using Socket'],
      [3, 'Query', 'SET SESSION sql_log_off=1'],
      [4, 'Connect', 'tc@198.18.1.2 on tcdb using TCP/IP'],
      [4, 'Query', 'select * from t\nwhere a=1'],
      [4, 'Prepare', 'SELECT v FROM kv WHERE id = ?'],
      [4, 'Execute', 'SELECT v FROM kv WHERE id = 7'],
      [4, 'Close stmt', ''],
      [4, 'Quit', ''],
      [5, 'Connect', "Access denied for user 'tc'@'198.18.1.2' (using password: YES)"],
      [6, 'Connect', 'tc@198.18.1.2 on tcdb using TCP/IP'],
      [6, 'Execute', 'SELECT v FROM kv WHERE id = 7'],
    ],
  );
  assert.equal(parseGeneralLog('garbage\n').badLines, 1);
});

test('the lab connections (Unix socket) are left out of the client records', () => {
  const r = parseGeneralLog(LOG).records;
  assert.deepEqual([...labThreads(r)], [3]);
  const c = clientRecords(r);
  assert.ok(c.every((x) => x.thread !== 3));
  assert.deepEqual(countByCommand(c), { Connect: 3, Query: 1, Prepare: 1, Execute: 2, 'Close stmt': 1, Quit: 1 });
  assert.equal(clientRecords(r, 9).length, 2, 'from a mark');
});

test('compareStatements: multisets of (command, text); each target statement matches once', () => {
  const rec = (
    thread: number,
    command: string,
    argument: string,
  ): { thread: number; command: string; argument: string } => ({
    thread,
    command,
    argument,
  });
  const online = [
    rec(1, 'Connect', 'tc@198.18.1.2 on tcdb using TCP/IP'),
    rec(1, 'Query', 'BEGIN'),
    rec(1, 'Query', 'BEGIN'),
    rec(1, 'Execute', 'SELECT 1'),
    rec(2, 'Prepare', 'SELECT ?'),
  ];
  const target = [
    rec(9, 'Query', 'BEGIN'),
    rec(9, 'Execute', 'SELECT 1'),
    rec(9, 'Query', 'COMMIT'),
    rec(8, 'Quit', ''),
  ];
  const c = compareStatements(online, target);
  assert.equal(c.online, 4);
  assert.equal(c.target, 3);
  assert.equal(c.matched, 2);
  assert.equal(c.ratio, 0.5);
  assert.equal(c.extra, 1);
  assert.deepEqual(c.byCommand, {
    Query: { online: 2, matched: 1 },
    Execute: { online: 1, matched: 1 },
    Prepare: { online: 1, matched: 0 },
  });
  assert.deepEqual(c.missingSample, ['Query: BEGIN', 'Prepare: SELECT ?']);
  assert.equal(compareStatements([], target).ratio, 1);
});

test('parseSysbench reads the run summary', () => {
  const text = `SQL statistics:
    queries performed:
        read:                            25564
        write:                           7286
        other:                           3645
        total:                           36495
    transactions:                        1819   (451.88 per sec.)
    queries:                             36495  (9066.03 per sec.)
    ignored errors:                      7      (1.74 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          4.0235s
`;
  assert.deepEqual(parseSysbench(text), {
    transactions: 1819,
    queries: 36495,
    read: 25564,
    write: 7286,
    other: 3645,
    ignoredErrors: 7,
    reconnects: 0,
    totalTimeS: 4.0235,
  });
  assert.ok(Number.isNaN(parseSysbench('').queries));
});
