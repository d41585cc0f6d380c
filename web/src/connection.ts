// The WebSocket to a document, kept open: reconnects with exponential backoff and jitter,
// notices a dead network (a socket whose peer went silent sends no close event), and reports
// its status for the indicator. It moves bytes only; the replica decides what they mean.
//
// Some closes end the connection for good (the document was deleted, this copy belongs to a
// deleted document of the same id, access was removed or expired): reconnecting cannot help.
// A server refuses a socket without valid credentials before upgrading it (401/403), and a
// browser shows that only as a socket that failed to open; so after a failed open the handlers
// are asked whether the server refuses us the document (the session API says), and if it does
// the connection ends with that reason instead of saying "offline".
//
// Whether the server can be reached is decided by the socket alone: an attempt that fails, or
// a question the server does not answer in time. `navigator.onLine` is only a hint that makes
// us notice sooner: it is true on a network that reaches nothing (a captive portal, a LAN with
// the server down), and browsers disagree about it, also under test-time network emulation.

/** Why a connection ended for good. */
export type Ending =
  /** 4410: the document was deleted. */
  | "deleted"
  /** 4412: this copy belongs to a deleted document of the same id (deleted, then created
   * again): it must never merge into the current document. */
  | "stale"
  /** 4403 "access revoked", or refused: the link it came in with was removed. */
  | "revoked"
  /** 4403 "access expired", or refused: the link's time is up. */
  | "expired"
  /** Refused: no credentials (never signed in, no link), or the owner's session is gone. */
  | "no-access";

export type Status =
  /** The first attempt of this page, not answered yet. */
  | "connecting"
  | "connected"
  /** The connection dropped a moment ago; the next attempt will tell whether it comes back. */
  | "reconnecting"
  /** The server cannot be reached: an attempt failed, the socket went silent, or the browser
   * says it has no network. Attempts go on with backoff. */
  | "offline"
  /** 4507: the server cannot save changes now. Ours stay in the replica and on the device;
   * attempts go on with backoff. */
  | "not-saving"
  /** 4413: our changes would take the document past its size limit; kept, retried with backoff
   * (the document may shrink meanwhile). */
  | "too-large"
  | Ending;

export function isEnding(status: Status): status is Ending {
  return ["deleted", "stale", "revoked", "expired", "no-access"].includes(status);
}

export interface ConnectionHandlers {
  /** The socket opened: the messages to send first (sync step 1, our presence). */
  opened(): Uint8Array[];
  /** A message the server always answers (a sync step 1), sent while connected. */
  heartbeat(): Uint8Array;
  message(frame: Uint8Array): void;
  closed(): void;
  status(status: Status): void;
  /** A socket failed to open: whether the server refuses us the document, and why (null: it
   * does not; undefined: it did not answer). */
  refused(): Promise<Ending | null | undefined>;
}

/** First retry after ~0.5 s, doubling up to 30 s: a restarted server is not hammered, and a
 * long outage does not leave a user waiting minutes after it ends (the `online` event and
 * the tab regaining focus retry at once). */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** With nothing heard for this long, ask the server something it always answers. */
const HEARTBEAT_MS = 10_000;
/** A question (heartbeat, or the confirmation the session asks for after an edit) unanswered
 * for this long means the server cannot be reached, even if the socket says open. Its
 * answers are a state vector's diff, normally a few bytes; 8 s leaves room for a loaded
 * server without leaving a person typing into a dead connection for long. */
const ANSWER_TIMEOUT_MS = 8_000;
/** A socket that has not opened after this long will not. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How often the timers above are checked. */
const CHECK_MS = 1_000;
/** The retry backoff starts over only once a connection has stayed up this long: a server
 * that takes the connection and then refuses what we send must not be hit in a tight loop. */
const STABLE_MS = 10_000;
/** quire's close codes (the server's `CloseReason`) that change what the connection does;
 * every other close is followed by a reconnection with backoff (4409, 4001, 4408, 4429 …). */
const CLOSE_DELETED = 4410;
const CLOSE_STALE_COPY = 4412;
const CLOSE_ACCESS = 4403;
const CLOSE_NOT_SAVING = 4507;
const CLOSE_TOO_LARGE = 4413;

export class Connection {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: number | undefined;
  private checkTimer: number | undefined;
  private stableTimer: number | undefined;
  /** When the current socket was created, and when it last delivered a frame. */
  private startedAt = 0;
  private lastFrame = 0;
  /** When the oldest question not yet followed by any frame was sent (0: none). */
  private askedAt = 0;
  private stopped = false;
  private current: Status = "connecting";
  /** Counts sockets, so that the answer about a failed one is dropped once a newer one exists. */
  private sockets = 0;

  constructor(
    private readonly url: string,
    private readonly handlers: ConnectionHandlers,
  ) {
    window.addEventListener("online", this.retryNow);
    window.addEventListener("offline", this.wentOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    // A browser that says it has no network is believed (the attempt below fails at once);
    // one that says it has is not, until the socket proves it.
    if (!navigator.onLine) this.setStatus("offline");
    this.open();
  }

  get status(): Status {
    return this.current;
  }

  /** Sends a frame if connected; otherwise the replica keeps it and the next sync carries it. */
  send(frame: Uint8Array): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(frame);
  }

  /** Sends a frame the server always answers; no answer within [`ANSWER_TIMEOUT_MS`] means
   * the server cannot be reached, and the connection starts over. */
  ask(frame: Uint8Array): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    this.socket.send(frame);
    if (this.askedAt === 0) this.askedAt = Date.now();
  }

  /** Closes for good (leaving the page). */
  stop(): void {
    this.stopped = true;
    window.removeEventListener("online", this.retryNow);
    window.removeEventListener("offline", this.wentOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
    this.drop();
  }

  /** Drops the current socket (as if it had died) and reconnects after the usual backoff. */
  reconnect(): void {
    this.drop();
    this.setStatus("reconnecting");
    this.scheduleRetry();
  }

  private open(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.sockets += 1;
    this.startedAt = this.lastFrame = Date.now();
    this.askedAt = 0;
    this.checkTimer = window.setInterval(this.check, CHECK_MS);
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.lastFrame = Date.now();
      for (const frame of this.handlers.opened()) socket.send(frame);
    };
    socket.onmessage = (event) => {
      this.lastFrame = Date.now();
      this.askedAt = 0;
      if (this.current !== "connected") {
        this.setStatus("connected");
        this.stableTimer = window.setTimeout(() => (this.attempt = 0), STABLE_MS);
      }
      if (event.data instanceof ArrayBuffer) this.handlers.message(new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.drop();
      const ending = endingOf(event.code, event.reason);
      if (ending) return this.end(ending);
      this.scheduleRetry();
      if (event.code === CLOSE_NOT_SAVING) return this.setStatus("not-saving");
      if (event.code === CLOSE_TOO_LARGE) return this.setStatus("too-large");
      // One that did open may be back at once (a restart, a slow client asked to resync), and
      // the next attempt tells. One that never opened found no server, or a server that refused
      // it: a browser cannot tell which, so the server is asked (not when the browser knows it
      // has no network).
      if (opened) return this.setStatus("reconnecting");
      if (!navigator.onLine) return this.setStatus("offline");
      const attempt = this.sockets;
      void this.handlers.refused().then((refusal) => {
        if (this.stopped || attempt !== this.sockets) return;
        if (refusal) this.end(refusal);
        else if (this.current !== "connected") this.setStatus("offline");
      });
    };
  }

  /** Ends the connection for good, saying why. */
  private end(ending: Ending): void {
    this.stop();
    this.setStatus(ending);
  }

  /** Forgets the socket: no more events from it; the replica is told it is disconnected. */
  private drop(): void {
    clearInterval(this.checkTimer);
    clearTimeout(this.stableTimer);
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.onopen = socket.onmessage = socket.onclose = null;
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
      socket.close();
    }
    this.handlers.closed();
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    // "Equal jitter": at least half the backoff, so retries spread out without collapsing
    // to zero, and at most the whole of it.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  /** The socket's deadlines: opening, answering, and a heartbeat when all is quiet. */
  private check = (): void => {
    const socket = this.socket;
    if (!socket) return;
    const now = Date.now();
    const dead =
      socket.readyState !== WebSocket.OPEN
        ? now - this.startedAt > CONNECT_TIMEOUT_MS
        : this.askedAt !== 0 && now - this.askedAt > ANSWER_TIMEOUT_MS;
    if (dead) {
      this.drop();
      this.setStatus("offline");
      this.scheduleRetry();
    } else if (socket.readyState === WebSocket.OPEN && now - this.lastFrame > HEARTBEAT_MS) {
      this.ask(this.handlers.heartbeat());
    }
  };

  private retryNow = (): void => {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    // A little jitter still: every tab of a building comes back online at the same moment.
    this.retryTimer = window.setTimeout(() => this.open(), Math.random() * 1000);
  };

  private wentOffline = (): void => {
    if (this.stopped) return;
    // The socket may stay "open" and silent for minutes; drop it now and say so. Attempts go
    // on: if the browser was wrong, the next one connects.
    this.drop();
    this.setStatus("offline");
    this.scheduleRetry();
  };

  private onVisible = (): void => {
    if (document.visibilityState === "visible" && !this.socket) this.retryNow();
  };

  private setStatus(status: Status): void {
    if (status === this.current) return;
    this.current = status;
    this.handlers.status(status);
  }
}

/** The ending a close code (and, for 4403, its reason) stands for, if it is one. */
function endingOf(code: number, reason: string): Ending | null {
  switch (code) {
    case CLOSE_DELETED:
      return "deleted";
    case CLOSE_STALE_COPY:
      return "stale";
    case CLOSE_ACCESS:
      return reason.includes("expired") ? "expired" : "revoked";
    default:
      return null;
  }
}
