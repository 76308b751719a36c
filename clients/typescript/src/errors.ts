/**
 * The two errors a call raises (docs/clients.md, "A call"): the server's
 * refusal of the request ({@link ApiError}) and the service out of reach
 * ({@link Unavailable}). Bad options raise the standard `TypeError` or
 * `RangeError` at once.
 */

/** How an attempt failed (docs/clients.md, the table of "A call"). */
export type FailureKind = "overloaded" | "unavailable" | "server_error" | "unreachable" | "timeout";

/** Why a call got no answer: a failure's kind, the breaker, or no fallback to give. */
export type UnavailableWhy = FailureKind | "breaker_open" | "no_fallback";

/**
 * The server refused the request: a 4xx other than 429 (`status`), with the
 * API's error `code` (`unknown_scene`, `event_id_reused`, ...), its message
 * and the request's `field` it is about, when it names one. Never retried.
 * A refusal whose body is not the API's error document has the code
 * `unknown` and the body's start as its message.
 */
export class ApiError extends Error {
    readonly status: number;
    readonly code: string;
    readonly field: string | undefined;

    constructor(status: number, code: string, message: string, field?: string) {
        super(message);
        this.name = "ApiError";
        this.status = status;
        this.code = code;
        this.field = field;
    }
}

/**
 * The call got no answer from the server: `why` is the last failed
 * attempt's kind, `breaker_open` (no request sent) or `no_fallback` (a
 * decision whose scene's fallback is not known); `attempts` the attempts
 * made; the message the last failure's.
 */
export class Unavailable extends Error {
    readonly why: UnavailableWhy;
    readonly attempts: number;

    constructor(why: UnavailableWhy, attempts: number, message: string) {
        super(message);
        this.name = "Unavailable";
        this.why = why;
        this.attempts = attempts;
    }
}
