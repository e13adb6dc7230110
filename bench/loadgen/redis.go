package main

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// newRedisPeer appends each message with XADD to the session's stream key, a request's
// messages in one pipeline (one write, one read), -window pipelines in flight per session,
// each on a connection of its own. What Redis persists is the server's configuration (the
// bench starts it with appendonly and appendfsync everysec or always).
func newRedisPeer(o options) (peer, error) {
	client := redis.NewClient(&redis.Options{
		Addr:         o.addr,
		PoolSize:     o.streams * o.window,
		MinIdleConns: o.streams * o.window,
	})
	return blockingPeer{
		window: o.window,
		open: func(_ context.Context, session string) (func(context.Context, [][]byte) error, func(), error) {
			send := func(ctx context.Context, messages [][]byte) error {
				pipe := client.Pipeline()
				for _, message := range messages {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: session, Values: []any{"m", message}})
				}
				_, err := pipe.Exec(ctx)
				return err
			}
			return send, func() {}, nil
		},
		closeAll: func() { client.Close() },
	}, nil
}
