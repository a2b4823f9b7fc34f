/* Generated from schemas/config.schema.json by `npm run gen:types`. Do not edit: change the schema. */

/**
 * A duration such as 500ms, 30s, 15m, 24h or 14d.
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "duration".
 */
export type Duration = string;
/**
 * A warehouse connection.
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "source".
 */
export type Source = ConnectionRules & {
  type: DatabaseType;
  url?: string;
  path?: string;
  project?: string;
  dataset?: string;
  location?: string;
  credentials?: string;
  statement_timeout?: Duration;
  description?: string;
};
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "connectionRules".
 */
export type ConnectionRules = unknown;
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "databaseType".
 */
export type DatabaseType = 'sqlite' | 'postgres' | 'mysql' | 'mssql' | 'oracle' | 'bigquery' | 'clickhouse';
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "destination".
 */
export type Destination = ConnectionRules & {
  type: 'sqlite' | 'postgres' | 'mysql' | 'mssql' | 'oracle' | 'bigquery' | 'clickhouse' | 'webhook' | 'file';
  url?: string;
  path?: string;
  project?: string;
  dataset?: string;
  location?: string;
  credentials?: string;
  statement_timeout?: Duration;
  /**
   * webhook: extra request headers.
   */
  headers?: {
    [k: string]: string;
  };
  /**
   * webhook: HMAC-SHA256 key for X-Backflow-Signature.
   */
  signing_secret?: string;
  /**
   * A duration such as 500ms, 30s, 15m, 24h or 14d.
   */
  timeout?: string;
  description?: string;
};
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "resourceName".
 */
export type ResourceName = string;
/**
 * Where a destination field's value comes from.
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "fieldValue".
 */
export type FieldValue =
  | string
  | {
      column: string;
      /**
       * select object / select array: send the whole value, which must have that shape.
       */
      type?: 'object' | 'array';
    }
  | {
      /**
       * A constant.
       */
      value: unknown;
    }
  | {
      /**
       * customize object: property → where its value comes from.
       */
      object: {
        [k: string]: FieldValue;
      };
    }
  | {
      /**
       * customize array: keep and rename properties of each item of an array-of-objects column.
       */
      array: {
        column: string;
        /**
         * output property → input property of each item.
         */
        items: {
          [k: string]:
            | string
            | {
                column: string;
              };
        };
      };
    };
/**
 * When the agent runs the mapping: manual, {every: 15m} or {cron: "* /15 * * * *"}.
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "schedule".
 */
export type Schedule =
  | 'manual'
  | {
      every: Duration;
    }
  | {
      cron: string;
      timezone?: string;
    };
/**
 * An external SQL storage for segment integrations (same types as sources).
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "connector".
 */
export type Connector = ConnectionRules & {
  type: DatabaseType;
  url?: string;
  path?: string;
  project?: string;
  dataset?: string;
  location?: string;
  credentials?: string;
  statement_timeout?: Duration;
  description?: string;
};

/**
 * A backflow configuration: every *.yaml, *.yml and *.hcl file of a directory merged into one document.
 */
export interface BackflowConfig {
  settings?: Settings;
  /**
   * Warehouse connections that models read from.
   */
  sources?: {
    [k: string]: Source;
  };
  /**
   * SQL queries that extract records from a source.
   */
  models?: {
    [k: string]: Model;
  };
  /**
   * Downstream targets that mappings load into.
   */
  destinations?: {
    [k: string]: Destination;
  };
  /**
   * A model's records mapped onto a destination action.
   */
  mappings?: {
    [k: string]: Mapping;
  };
  /**
   * Who hears about failed and partially successful runs.
   */
  alerts?: {
    [k: string]: Alert;
  };
  /**
   * External SQL storages that segment integrations write to.
   */
  connectors?: {
    [k: string]: Connector;
  };
  /**
   * Static segments mirrored into external SQL tables.
   */
  segments?: {
    [k: string]: Segment;
  };
  /**
   * SQL templates run on segment events.
   */
  segment_integrations?: {
    [k: string]: SegmentIntegration;
  };
}
/**
 * Where state and runtime data live, and agent defaults.
 *
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "settings".
 */
export interface Settings {
  /**
   * Where the applied state is kept.
   */
  state?: {
    backend?: 'local' | 'postgres';
    /**
     * local: the state file, relative to the config directory (default .backflow/state.json).
     */
    path?: string;
    /**
     * postgres: the connection URL (use ${env:NAME} for secrets).
     */
    url?: string;
    /**
     * postgres: the table name (default backflow_state).
     */
    table?: string;
  };
  /**
   * The runtime store: runs, snapshots, pending records, segment queues, notifications.
   */
  store?: {
    /**
     * sqlite:PATH (default sqlite:.backflow/store.db) or postgres://...
     */
    url?: string;
    /**
     * How long run history and replay sets are kept (default 30d).
     */
    retention?: string;
  };
  /**
   * Defaults for `backflow agent`.
   */
  agent?: {
    concurrency?: number;
    /**
     * HTTP address, default 127.0.0.1:7465.
     */
    listen?: string;
    poll_interval?: Duration;
    /**
     * A duration such as 500ms, 30s, 15m, 24h or 14d.
     */
    lease?: string;
  };
}
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "model".
 */
export interface Model {
  /**
   * The source the query runs on.
   */
  source: string;
  /**
   * The query; every row is one record.
   */
  sql: string;
  /**
   * The column (or columns) that identify a record.
   */
  primary_key: string | [string, ...string[]];
  description?: string;
}
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "mapping".
 */
export interface Mapping {
  model: ResourceName;
  destination: ResourceName;
  action: 'upsert' | 'insert' | 'update' | 'delete' | 'mirror' | 'post' | 'append';
  /**
   * Destination field → where its value comes from.
   */
  fields: {
    [k: string]: FieldValue;
  };
  enabled?: boolean;
  schedule?: Schedule;
  /**
   * Which changes are sent (default depends on the action).
   *
   * @minItems 1
   */
  sync_on?: ['added' | 'updated' | 'deleted', ...('added' | 'updated' | 'deleted')[]];
  batch_size?: number;
  retry?: {
    /**
     * A duration such as 500ms, 30s, 15m, 24h or 14d.
     */
    max_age?: string;
  };
  /**
   * Database destinations: the target table (schema.table allowed).
   */
  table?: string;
  /**
   * Database destinations: the destination column matched against the model's primary key.
   */
  key?: string;
  description?: string;
}
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "alert".
 */
export interface Alert {
  /**
   * @minItems 1
   */
  on: [
    'failed' | 'partial_success' | 'segment_failed',
    ...('failed' | 'partial_success' | 'segment_failed')[]
  ];
  /**
   * Scope (default: every mapping).
   */
  mappings?: ResourceName[];
  /**
   * Scope for segment_failed (default: every integration).
   */
  segment_integrations?: ResourceName[];
  /**
   * A duration such as 500ms, 30s, 15m, 24h or 14d.
   */
  repeat_after?: string;
  email?: {
    /**
     * @minItems 1
     */
    to: [string, ...string[]];
    from?: string;
    smtp: {
      /**
       * smtp://user:pass@host:port (use ${env:NAME}).
       */
      url: string;
    };
  };
  slack?: {
    webhook_url: string;
    channel?: string;
  };
  in_app?: boolean;
}
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "segment".
 */
export interface Segment {
  /**
   * The segment's numeric id ({segment_id}).
   */
  id: number;
  /**
   * The segment's name ({segment_name}).
   */
  name: string;
  /**
   * The profile field that identifies a profile, e.g. CustomID.
   */
  key: string;
  members:
    | 'managed'
    | {
        model: ResourceName;
      };
  /**
   * managed segments: the profile fields templates may use (the key is always one).
   */
  fields?: string[];
  description?: string;
}
/**
 * This interface was referenced by `BackflowConfig`'s JSON-Schema
 * via the `definition` "segmentIntegration".
 */
export interface SegmentIntegration {
  description?: string;
  /**
   * active (true) or paused (false): a paused integration keeps its queue.
   */
  enabled?: boolean;
  connector: ResourceName;
  segments: 'all' | [ResourceName, ...ResourceName[]];
  batch?: {
    size?: number;
    /**
     * A duration such as 500ms, 30s, 15m, 24h or 14d.
     */
    timeout?: string;
  };
  queries: {
    add: string;
    remove: string;
    clear?: string;
    upsert_segment?: string;
    delete_segment?: string;
  };
}
