// The WebSocket to a document, kept open: reconnects with exponential backoff and jitter,
// notices a dead network (a socket whose peer went silent sends no close event), and reports
// its status for the indicator. It moves bytes only; the replica decides what they mean.

export type Status = "connecting" | "connected" | "reconnecting" | "offline" | "deleted";

export interface ConnectionHandlers {
  /** The socket opened: the messages to send first (sync step 1, our presence). */
  opened(): Uint8Array[];
  /** A message the server always answers (a sync step 1), sent while connected. */
  heartbeat(): Uint8Array;
  message(frame: Uint8Array): void;
  closed(): void;
  status(status: Status): void;
}

/** First retry after ~0.5 s, doubling up to 30 s: a restarted server is not hammered, and a
 * long outage does not leave a user waiting minutes after it ends (the `online` event and
 * the tab regaining focus retry at once). */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** Send the heartbeat this often; its answer proves the connection alive. */
const HEARTBEAT_MS = 10_000;
/** No frame for this long: the connection is dead even if the socket says open. */
const SILENCE_MS = 25_000;
/** A socket that has not opened after this long will not. */
const CONNECT_TIMEOUT_MS = 10_000;
/** The retry backoff starts over only once a connection has stayed up this long: a server
 * that takes the connection and then refuses what we send must not be hit in a tight loop. */
const STABLE_MS = 10_000;
/** Close codes after which reconnecting cannot help. */
const CLOSE_DELETED = 4410;

export class Connection {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: number | undefined;
  private heartbeatTimer: number | undefined;
  private stableTimer: number | undefined;
  private lastFrame = 0;
  private stopped = false;
  private current: Status = "connecting";

  constructor(
    private readonly url: string,
    private readonly handlers: ConnectionHandlers,
  ) {
    window.addEventListener("online", this.retryNow);
    window.addEventListener("offline", this.wentOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    if (navigator.onLine) this.open();
    else this.setStatus("offline");
  }

  get status(): Status {
    return this.current;
  }

  /** Sends a frame if connected; otherwise the replica keeps it and the next sync carries it. */
  send(frame: Uint8Array): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(frame);
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
    this.scheduleRetry();
  }

  private open(): void {
    if (this.stopped) return;
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.lastFrame = Date.now();
    // Until it opens, the same timer checks that it does.
    this.heartbeatTimer = window.setInterval(this.heartbeat, HEARTBEAT_MS);
    socket.onopen = () => {
      this.lastFrame = Date.now();
      for (const frame of this.handlers.opened()) socket.send(frame);
    };
    socket.onmessage = (event) => {
      this.lastFrame = Date.now();
      if (this.current !== "connected") {
        this.setStatus("connected");
        this.stableTimer = window.setTimeout(() => (this.attempt = 0), STABLE_MS);
      }
      if (event.data instanceof ArrayBuffer) this.handlers.message(new Uint8Array(event.data));
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.drop();
      if (event.code === CLOSE_DELETED) {
        this.stopped = true;
        this.setStatus("deleted");
      } else {
        this.scheduleRetry();
      }
    };
  }

  /** Forgets the socket: no more events from it; the replica is told it is disconnected. */
  private drop(): void {
    clearInterval(this.heartbeatTimer);
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
    if (!navigator.onLine) {
      this.setStatus("offline");
      return;
    }
    this.setStatus("reconnecting");
    // "Equal jitter": at least half the backoff, so retries spread out without collapsing
    // to zero, and at most the whole of it.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  private heartbeat = (): void => {
    const open = this.socket?.readyState === WebSocket.OPEN;
    if (Date.now() - this.lastFrame > (open ? SILENCE_MS : CONNECT_TIMEOUT_MS)) {
      this.reconnect();
      return;
    }
    if (open) this.send(this.handlers.heartbeat());
  };

  private retryNow = (): void => {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    // A little jitter still: every tab of a building comes back online at the same moment.
    this.retryTimer = window.setTimeout(() => this.open(), Math.random() * 1000);
  };

  private wentOffline = (): void => {
    // The socket may stay "open" and silent for minutes; drop it now and say so.
    this.drop();
    clearTimeout(this.retryTimer);
    if (!this.stopped) this.setStatus("offline");
  };

  private onVisible = (): void => {
    if (document.visibilityState === "visible" && !this.socket && navigator.onLine) this.retryNow();
  };

  private setStatus(status: Status): void {
    if (status === this.current) return;
    this.current = status;
    this.handlers.status(status);
  }
}
