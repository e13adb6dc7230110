// Package sessionstore is a Go client for sessionstore, the gRPC service that keeps AI agents'
// conversation history: ordered, append-only logs of JSON messages, one per session, stored byte
// for byte.
//
// Messages travel as [json.RawMessage]: what an agent appends is exactly what every reader, in any
// language, gets back. [Marshal] turns Go values into messages; [Message.Decode] turns them back.
//
// Every method takes a [context.Context] first; failures are [*Error] values carrying the gRPC
// status code (use [errors.As], or [google.golang.org/grpc/status.Code], which also works on
// them), those the client raises itself included. Streams are iterators ([iter.Seq2]): Messages,
// List, Watch and WatchEvents. A session that does not exist is absent, not an error: [Client.Meta]
// answers ok == false, reads answer nothing.
//
// Calls that are safe to repeat are retried when the server is unavailable, as a [RetryPolicy]
// says ([WithRetry]; [DefaultRetryPolicy] otherwise); reads and watches resume from the next seq,
// and an [Appender], a long-lived writer to one session, reconnects and resends what was not
// acknowledged at the seq it claimed, so that every message is stored exactly once.
//
// The package keeps the client contract that every sessionstore client keeps (clients/README.md
// in the repository).
//
// Sessions carry labels ([Labels], [Client.SetLabels]) that [Client.List] selects by
// ([LabelSelector]), most recently appended first if asked ([OrderBy]); they can be forked
// ([Client.Fork]), rewound ([Client.Rewind], [Client.PopLast]) and trimmed ([Client.Trim]), and read
// as a context window that a model API accepts ([Client.LoadWindow] with [MaxBytes] and
// [WholeTurns]).
//
// The generated protobuf and gRPC code is in the gen/sessionstore/v1 package, for callers that
// want the raw API.
package sessionstore
