/**
 * `@cepheid/client`: the client of `cepheid serve` (docs/clients.md).
 *
 * ```ts
 * import { Client } from "@cepheid/client";
 * const client = new Client({ url: "http://127.0.0.1:8870", fallbacks: { payment: "review" } });
 * const d = await client.decide("payment", { type: "payment", card: "c1", amount: 120 });
 * ```
 */
export {
    Client,
    type BreakerChange,
    type BreakerState,
    type CallOptions,
    type ClientDecision,
    type ClientOptions,
    type DecideOptions,
    type DecideResult,
    type Decision,
    type Event,
    type EventToRecord,
    type EventsRecorded,
    type Fallback,
    type ListChange,
    type ListChanged,
    type ListValue,
    type Scene,
    type Scenes,
    type ServerDecision,
} from "./client";
export { ApiError, Unavailable, type FailureKind, type UnavailableWhy } from "./errors";
export {
    HttpTransport,
    TransportError,
    type HttpTransportOptions,
    type Transport,
    type TransportRequest,
    type TransportResponse,
} from "./transport";
export type { components, operations, paths } from "./api.gen";
