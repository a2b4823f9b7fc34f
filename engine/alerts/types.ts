import type { Alert } from '../config/types.gen.js';

/** An applied alert: its name and normalised body from state. */
export interface AppliedAlert {
  readonly name: string;
  readonly body: Alert;
  /** Set when the body held an inline password (state keeps it redacted). */
  readonly sensitive_digest?: string;
}

/** What a message is about: the first of an incident, a reminder while it lasts, or its end. */
export type MessageKind = 'alert' | 'reminder' | 'recovered';

/** The channels an alert can deliver through. */
export type Channel = 'email' | 'slack' | 'in_app';

/** One labelled fact (mapping, status, counts, run); every channel renders the same list. */
export interface Fact {
  readonly label: string;
  readonly value: string;
}

/** One of the top errors of a run or a failed segment query, without sample payloads (no record data leaves backflow). */
export interface MessageError {
  readonly code: string;
  readonly message: string;
  readonly records: number;
  readonly recommended_action: string;
}

/**
 * Everything a notification says, channel-independent; email, Slack and in-app render it, and a
 * pending delivery keeps it so that a retry sends exactly the same content.
 */
export interface AlertMessage {
  readonly alert: string;
  readonly kind: MessageKind;
  /** The resource the message is about (`mapping.users_to_crm`, `segment_integration.export_vips`). */
  readonly topic: string;
  /** The status the message reports: a run status, `segment_failed`, or `recovered`. */
  readonly status: string;
  /** The email subject and Slack header: `[backflow] users_to_crm failed`. */
  readonly title: string;
  /** One sentence: what happened and how many records. */
  readonly summary: string;
  readonly facts: readonly Fact[];
  readonly errors: readonly MessageError[];
  /** What to run to see more (`backflow syncs show RUN_ID`). */
  readonly next_step: string;
  readonly run_id: string | null;
  readonly created_at: string;
}

/** How one delivery attempt ended. */
export type AttemptResult =
  | { readonly ok: true; readonly note?: string }
  | {
      readonly ok: false;
      readonly retryable: boolean;
      readonly error: string;
      readonly retryAfterMs?: number;
    };

/** A recorded delivery (`alert_deliveries`). */
export interface Delivery {
  readonly id: number;
  readonly alert: string;
  readonly topic: string;
  readonly kind: MessageKind;
  readonly channel: Channel;
  /** Who it goes to: the email addresses, the Slack channel, `in_app`. */
  readonly target: string;
  readonly status: 'pending' | 'sent' | 'failed';
  readonly attempts: number;
  readonly last_error: string | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly next_attempt_at: string | null;
  readonly sent_at: string | null;
}
