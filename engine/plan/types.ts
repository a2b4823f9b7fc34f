/** Resource kinds in SPEC's singular address form (`mapping.users_to_crm`). */
export type ResourceKind =
  | 'source'
  | 'model'
  | 'destination'
  | 'mapping'
  | 'alert'
  | 'connector'
  | 'segment'
  | 'segment_integration';

/** A normalised resource: what state stores (secret references, never values). */
export interface ResourceState {
  readonly address: string;
  readonly kind: ResourceKind;
  readonly name: string;
  readonly body: Readonly<Record<string, unknown>>;
  /** sha256 of the body before redaction, when it held an inline password: changes stay visible. */
  readonly sensitive_digest?: string;
}

export type ChangeAction = 'create' | 'update' | 'delete';

export interface PathDiff {
  /** Dotted path inside the body (`fields.email`, `sql`). */
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

/** A data effect the apply will cause (SPEC §2). */
export type Effect =
  | {
      readonly kind: 'full_resync';
      readonly mapping: string;
      readonly reason: string;
      readonly records?: number;
    }
  | { readonly kind: 'upsert_segment'; readonly segment: string; readonly integration: string }
  | { readonly kind: 'delete_segment'; readonly segment: string; readonly integration: string }
  | { readonly kind: 'mapping_enabled'; readonly mapping: string }
  | { readonly kind: 'mapping_disabled'; readonly mapping: string }
  | { readonly kind: 'mapping_removed'; readonly mapping: string };

export interface ResourceChange {
  readonly address: string;
  readonly action: ChangeAction;
  readonly before: Readonly<Record<string, unknown>> | null;
  readonly after: Readonly<Record<string, unknown>> | null;
  readonly diff: readonly PathDiff[];
  readonly effects: readonly Effect[];
  /** Why a delete happens (Terraform's `# (because ...)`). */
  readonly reason?: string;
}

/** Last run of a mapping the change touches (from the store or the status document), when known. */
export interface MappingHealth {
  readonly mapping: string;
  readonly status: string;
  readonly started_at: string;
  readonly run_id: string;
}

/** A plan: a value. `apply` is the only side effect. Serialised as-is by `--out` and `--json`. */
export interface Plan {
  readonly format_version: '1.0';
  readonly created_at: string;
  /** The state the plan was made against; `apply PLANFILE` refuses it if either moved. */
  readonly state: { readonly serial: number; readonly lineage: string };
  readonly changes: readonly ResourceChange[];
  readonly summary: { readonly create: number; readonly update: number; readonly delete: number };
  /** The resources the config holds after apply, sorted by address (what apply writes). */
  readonly resources: readonly ResourceState[];
  /** Problems found while refreshing (queries that fail, missing columns); errors block apply. */
  readonly diagnostics: readonly import('../diagnostics.js').Diagnostic[];
  readonly health?: readonly MappingHealth[];
  /** The config directory the plan was made from (absolute). */
  readonly dir: string;
}
