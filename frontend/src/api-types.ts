// Generated from the REST views (labwright_wire::rest), the schemas of the api-server's OpenAPI document.
// Do not edit: run `LABWRIGHT_UPDATE_API_TYPES=1 cargo test -p labwright-wire --features rest --test api_types`.

/** A page of results with the total that matched. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface BuildView {
  created_at: string;
  /** The Dockerfile built: the repository's own or a generated one. */
  dockerfile?: string | null;
  durations: Durations;
  finished_at?: string | null;
  id: string;
  image?: string | null;
  /** The last lines of the log (one build only, not in lists). */
  log_tail?: string[] | null;
  own_dockerfile?: boolean | null;
  reason: string;
  ref?: string | null;
  repo_url: string;
  session?: SessionSummary | null;
  /** The detected stack (e.g. `node`, `python`). */
  stack?: string | null;
  /**
   * queued, cloning, detecting, building, starting, running, failed, expired, cancelled,
   * stopped.
   */
  stage: string;
  /** When a worker took the job. */
  started_at?: string | null;
  subdir?: string | null;
}

export interface CreateBuild {
  /** Branch, tag or commit; the default branch when absent. */
  ref?: string | null;
  /**
   * `https://`, `http://`, `ssh://`, `git://` or `user@host:path`; no credentials, no local
   * paths.
   */
  repo_url: string;
  /** Directory of the repository to build (relative, no `..`). */
  subdir?: string | null;
}

export interface CreateExecution {
  /** Device id. */
  device: string;
  /** Test case name. */
  testcase: string;
  /** Test case version; the latest when absent. */
  version?: number | null;
}

export interface CreateKey {
  /**
   * Host enrollment tokens only: bind the token to this host name now. Without it, the token
   * is bound to the host name of its first hello.
   */
  host_name?: string | null;
  name: string;
  /** `viewer`, `operator`, `admin`, or `host` (a host enrollment token). */
  role: string;
}

export type CreatedKey = KeyView & {
  /** The key itself. Shown only in this response; store it now. */
  secret: string;
};

/** What a `DELETE` did. */
export type DeleteOutcome = "deleted" | "archived";

/** The answer of deleting a test case or a navigation tree. */
export interface DeletedView {
  /** How many executions ran it (why it was archived rather than deleted). */
  executions: number;
  /** The test case's name or the tree's model. */
  name: string;
  outcome: DeleteOutcome;
  /** How many versions were deleted or archived. */
  versions: number;
}

export interface DeviceView {
  capabilities: string[];
  /** The device's id inside its host. */
  device_key: string;
  driver: string;
  /**
   * `healthy`, `degraded` or `unhealthy`, as its host last checked it (absent before the
   * first check).
   */
  health?: string | null;
  /** When the host last checked the device's health. */
  health_checked_at?: string | null;
  /**
   * Why it is not healthy: `part: problem` per failing part (video, audio, console, power),
   * joined by `; `. Empty when healthy.
   */
  health_reason?: string;
  host_id: string;
  host_name: string;
  id: string;
  last_seen_at: string;
  model: string;
  name: string;
  /** When the power state was last read from the switch. */
  power_read_at?: string | null;
  /**
   * The last known mains power state, `on` or `off`, as the switch reported it after the
   * last power action (absent: unknown).
   */
  power_state?: string | null;
  /** When the power was last switched (on, off or cycle) through Labwright. */
  power_switched_at?: string | null;
  power_switched_by?: PowerSwitcher | null;
  reservation?: ReservationView | null;
  status: string;
  status_detail: string;
  tags: string[];
}

export interface Durations {
  /** From a worker taking it until its session started or it ended (so far, while building). */
  build_ms?: number | null;
  /** From submission until a worker took it (so far, while queued). */
  queued_ms?: number | null;
}

export interface ErrorBody {
  error: ErrorDetail;
}

/** The stable, machine-readable error codes. Clients match on these, never on the message. */
export type ErrorCode = "unauthenticated" | "forbidden" | "not_found" | "invalid_argument" | "conflict" | "database_unavailable" | "broker_unavailable" | "timeout" | "internal" | "rate_limited";

export interface ErrorDetail {
  /** Stable machine-readable code, e.g. `not_found`, `database_unavailable`. */
  code: string;
  /** Human-readable explanation. */
  message: string;
}

export interface ExecutionView {
  cancel_requested: boolean;
  created_at: string;
  device_id: string;
  dispatched_at?: string | null;
  finished_at?: string | null;
  id: string;
  /** Executions queued on the same device ahead of this one (queued executions only). */
  queue_position?: number | null;
  reason: string;
  /** queued, dispatched, running, passed, failed, error, cancelled, interrupted. */
  status: string;
  steps?: StepView[] | null;
  steps_total?: number | null;
  testcase: string;
  testcase_id: string;
  testcase_version: number;
}

export interface ExtendSession {
  /** Seconds added to the later of now and the current expiry. */
  seconds: number;
}

export interface HostView {
  agent_version: string;
  connected_at?: string | null;
  created_at: string;
  device_count: number;
  devices?: DeviceView[] | null;
  id: string;
  info: any;
  last_seen_at: string;
  name: string;
  /** Latest system stats from the host's heartbeats. */
  stats?: any;
  /** `online`, `offline` or `error`. */
  status: string;
}

export interface KeyView {
  created_at: string;
  /**
   * Host enrollment tokens only: the one host name the token may open the host link as (set
   * at creation, or by the token's first hello).
   */
  host_name?: string | null;
  id: string;
  last_used_at?: string | null;
  name: string;
  /** First characters of the key, to tell keys apart. */
  prefix: string;
  revoked_at?: string | null;
  role: string;
}

/** A live view control message from the server (a text frame). */
export type LiveMessage = {
  device: string;
  fps: number;
  in_flight: number;
  type: "live";
} | {
  tier: string;
  type: "quality";
};

export interface PingResult {
  /** Round trip server -> host -> server over the host's stream, in milliseconds. */
  round_trip_ms: number;
}

export interface PowerBody {
  /** `on`, `off`, `cycle` (off, 2 s, on) or `state` (only report it). */
  action: string;
}

/** Who switched a device's power. */
export interface PowerSwitcher {
  /** The key's or the execution's id. */
  id: string;
  /** `user` (an API key, from the web UI, the CLI or a script) or `execution`. */
  kind: string;
  /** The key's name or the test case's title, at the time. */
  name: string;
}

export interface PowerView {
  /** `on` or `off`, after the action. */
  state: string;
}

export interface PressBody {
  /** Hold the key this long (long press). */
  hold_ms?: number;
  /** Key name: up, down, left, right, ok, back, home, menu, info, power, ch_up, ch_down, vol_up, vol_down, mute, play_pause, 0-9. */
  key: string;
}

/**
 * What kind of problem a test case has (`POST /api/v1/testcases/validate`). Stable: clients
 * match on these, never on the message.
 */
export type ProblemCode = "syntax" | "unknown_field" | "missing_field" | "invalid_shape" | "invalid_value" | "unknown_screen" | "unreachable_screen" | "no_navigation_tree" | "model_mismatch" | "unknown_reference" | "reference_too_large" | "missing_capability";

/** One problem of a test case, where it is written. */
export interface ProblemView {
  code: ProblemCode;
  /** 1-based column (in characters) on that line. */
  column?: number | null;
  /** The field path (`steps[3].verify_image.region`); absent for syntax and shape errors. */
  field?: string | null;
  /** 1-based line of the YAML where the problem is; absent for an empty document. */
  line?: number | null;
  /** What is wrong, for people. */
  message: string;
}

export interface ReferenceView {
  created_at: string;
  height: number;
  name: string;
  sha256: string;
  url: string;
  width: number;
}

export interface ReservationView {
  /** The end of the time box. */
  ends_at: string;
  /** The name of the key that holds it. */
  holder: string;
  key_id: string;
  /** Held by the caller's key. */
  mine: boolean;
  since: string;
  /** When it ends unless kept alive (the page holding it renews it). */
  until: string;
}

export interface ReserveBody {
  /**
   * An interactive lock (the default, as the web UI holds one): it ends unless renewed with
   * `PUT` at least every 60 s. `false`: the reservation lasts its whole time box whether or
   * not anything renews it (`labwright reserve`).
   */
  keep_alive?: boolean;
  /** Length of the time box, 1 to 480 minutes. */
  minutes: number;
}

export interface SessionSummary {
  container_id: string;
  /** The app's exit code once it ended by itself (`exited`). */
  exit_code?: number | null;
  expires_at: string;
  id: string;
  /** The app was killed for using more memory than the session may. */
  oom_killed?: boolean;
  /** running, exited, stopped, expired. */
  status: string;
}

export interface SessionView {
  build_id: string;
  container_id: string;
  created_at: string;
  end_reason: string;
  ended_at?: string | null;
  /** The exit code of the app's last run, when it ended by itself. */
  exit_code?: number | null;
  /** When the app's last run ended by itself. */
  exited_at?: string | null;
  /** When it expires unless extended. */
  expires_at: string;
  /** It is never extended past this. */
  hard_expires_at: string;
  /** The build's id (one session per build). */
  id: string;
  network: string;
  /** The app's last run was killed for using more memory than the session may. */
  oom_killed?: boolean;
  /** How many times the session was restarted. */
  restarts?: number;
  /**
   * running; exited (its app ended by itself: `exit_code`, `oom_killed`, `exited_at`; it can
   * be restarted until it expires); stopped; expired.
   */
  status: string;
}

export interface StepView {
  duration_ms: number;
  index: number;
  kind: string;
  measurements: any;
  path: string;
  reason: string;
  screenshot_url?: string | null;
  started_at: string;
  /** When the server stored the step. */
  stored_at: string;
  /** pass, fail, error, skipped. */
  verdict: string;
}

export interface TerminalTicket {
  expires_at: string;
  /** Single use, valid for a few seconds: connect right away. */
  ticket: string;
  /** WebSocket URL of the terminal, ticket included. */
  url: string;
}

export interface TestCaseView {
  created_at: string;
  /** The parsed test case. */
  document: any;
  id: string;
  name: string;
  /** The YAML as uploaded. */
  source: string;
  version: number;
  versions?: VersionView[] | null;
}

export interface TreeView {
  created_at: string;
  /** The tree, with `stats` holding what navigation has learned about each edge. */
  document: any;
  model: string;
  version: number;
}

/**
 * The answer of `POST /api/v1/testcases/validate`: every problem the server would refuse the
 * test case for, nothing saved.
 */
export interface ValidationView {
  /** The test case's name, when the text parses. */
  name?: string | null;
  /** Every problem, in the order the document is checked. */
  problems: ProblemView[];
  /** Whether a push of this text would be accepted. */
  valid: boolean;
}

export interface VersionView {
  created_at: string;
  version: number;
}

/** A live view control message from the viewer (a text frame). */
export type ViewerMessage = {
  /** The drawn frame's sequence number. */
  seq?: number | null;
  type: "ack";
};

export interface WhoAmI {
  key_id: string;
  key_name: string;
  role: string;
  tenant_id: string;
  tenant_name: string;
}

/** WebSocket close codes with one meaning in every Labwright socket (labwright_wire::ws::close). */
export const CloseCode = {
  /** The peer ended normally (the shell exited, the user or viewer left). */
  NORMAL: 1000,
  /** The server is shutting down or restarting: reconnect. */
  GOING_AWAY: 1001,
  /** The peer broke the WebSocket protocol. */
  PROTOCOL_ERROR: 1002,
  /** A frame over the size limit. */
  TOO_BIG: 1009,
  /** The server failed (a peer it needs is unreachable, ...). */
  INTERNAL: 1011,
  /** A message from the client that is not valid JSON of a known type, or out of range. */
  BAD_MESSAGE: 4400,
  /** The key that opened the socket (or signed its ticket) was revoked. */
  KEY_REVOKED: 4411,
} as const;

/** The terminal protocol's own close codes (labwright_wire::ws::terminal::close), besides `CloseCode`. */
export const TerminalCloseCode = {
  /** No ticket, or a malformed or forged one. */
  BAD_TICKET: 4401,
  /** The ticket expired before it was used. */
  TICKET_EXPIRED: 4402,
  /** The ticket is for another session than the one in the URL. */
  OTHER_SESSION: 4403,
  /** The session's container does not exist (or is not the ticket's tenant's). */
  NO_SESSION: 4404,
  /** No input for the idle timeout, or the client stopped answering pings. */
  IDLE: 4408,
  /** The ticket was used already. */
  TICKET_REUSED: 4409,
  /** The session's container stopped (ended, expired, or killed). */
  SESSION_ENDED: 4410,
  /** The session's app ended by itself (the reason says how: its exit code, a signal, or running out of memory); the session is `exited` and can be restarted. */
  APP_EXITED: 4412,
  /** The tenant (or the gateway) has as many terminals open as allowed. */
  TOO_MANY: 4429,
} as const;

/** The live view and events sockets' own close codes (labwright_wire::ws::live::close), besides `CloseCode`. */
export const LiveCloseCode = {
  /** No such device (or another tenant's). */
  NO_DEVICE: 4404,
  /** Offline, without video, or its host is connected to another replica. */
  UNAVAILABLE: 4409,
  /** The device's host went away while watching. */
  ENDED: 4410,
} as const;
