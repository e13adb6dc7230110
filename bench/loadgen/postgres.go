package main

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// newPostgresPeer inserts a request's messages as rows of one INSERT (its own transaction) into
// a table shaped like the server's (session, seq, body), -window transactions in flight per
// session, each worker on a connection of its own. -sync sets synchronous_commit on (the commit
// waits for the WAL's fsync), otherwise off.
func newPostgresPeer(ctx context.Context, o options) (peer, error) {
	config, err := pgx.ParseConfig(o.addr)
	if err != nil {
		return nil, err
	}
	config.RuntimeParams["synchronous_commit"] = map[bool]string{true: "on", false: "off"}[o.sync]
	admin, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return nil, err
	}
	if _, err := admin.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_messages (session_id text COLLATE "C", seq bigint, body text, PRIMARY KEY (session_id, seq))`); err != nil {
		admin.Close(ctx)
		return nil, err
	}
	nextSeq := map[string]*atomic.Int64{}
	return blockingPeer{
		window: o.window,
		open: func(ctx context.Context, session string) (func(context.Context, [][]byte) error, func(), error) {
			conn, err := pgx.ConnectConfig(ctx, config)
			if err != nil {
				return nil, nil, err
			}
			// The workers of a session share its seq counter, as appends to one session do.
			if nextSeq[session] == nil {
				nextSeq[session] = &atomic.Int64{}
			}
			seq := nextSeq[session]
			bodies := make([]string, 0, o.batch)
			send := func(ctx context.Context, messages [][]byte) error {
				bodies = bodies[:0]
				for _, message := range messages {
					bodies = append(bodies, string(message))
				}
				first := seq.Add(int64(len(messages))) - int64(len(messages))
				_, err := conn.Exec(ctx,
					"INSERT INTO bench_messages SELECT $1, $2 + n - 1, body FROM unnest($3::text[]) WITH ORDINALITY AS t(body, n)",
					session, first, bodies)
				return err
			}
			return send, func() { conn.Close(context.Background()) }, nil
		},
		closeAll: func() { admin.Close(context.Background()) },
	}, nil
}
