export type Lane = 'decision' | 'execution';

export interface ClaimedJob {
  id: number;
  lane: Lane;
  type: string;
  entity_id: string;
  payload: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  correlation_id: string;
  trace_id: string;
  source_event_position: number | null;
}
