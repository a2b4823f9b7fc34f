import 'vitest';
/**
 * What the global setup (test/harness/global-setup.ts) provides to test files through
 * `inject('servers')`: connection URLs of the real servers it started. A server that the
 * run did not ask for (BACKFLOW_TEST_SERVERS) is absent.
 */
export interface TestServers {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly postgres?: string;
  /** mysql://root@127.0.0.1:PORT/mysql (MariaDB) */
  readonly mariadb?: string;
  /** http://127.0.0.1:PORT (ClickHouse HTTP interface, user default, no password) */
  readonly clickhouse?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    servers: TestServers;
  }
}
