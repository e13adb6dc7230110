package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsStream is the JetStream stream every session's subject goes to (bench.<session>).
const natsStream = "BENCH"

// newNatsPeer publishes to JetStream, file storage: a request's messages published
// asynchronously, then all their acks awaited (an ack means the server stored the message, and
// fsynced it when the server runs with sync_interval: always); -window requests in flight per
// session, each worker on a connection of its own. The stream is created (or emptied) first.
func newNatsPeer(ctx context.Context, o options) (peer, error) {
	admin, err := nats.Connect(o.addr)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(admin)
	if err != nil {
		admin.Close()
		return nil, err
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     natsStream,
		Subjects: []string{"bench.>"},
		Storage:  jetstream.FileStorage,
	})
	if err == nil {
		err = stream.Purge(ctx)
	}
	if err != nil {
		admin.Close()
		return nil, err
	}
	return blockingPeer{
		window: o.window,
		open: func(_ context.Context, session string) (func(context.Context, [][]byte) error, func(), error) {
			conn, err := nats.Connect(o.addr)
			if err != nil {
				return nil, nil, err
			}
			js, err := jetstream.New(conn, jetstream.WithPublishAsyncMaxPending(max(256, o.batch)))
			if err != nil {
				conn.Close()
				return nil, nil, err
			}
			subject := "bench." + session
			futures := make([]jetstream.PubAckFuture, 0, o.batch)
			send := func(ctx context.Context, messages [][]byte) error {
				futures = futures[:0]
				for _, message := range messages {
					future, err := js.PublishAsync(subject, message)
					if err != nil {
						return err
					}
					futures = append(futures, future)
				}
				for _, future := range futures {
					select {
					case <-future.Ok():
					case err := <-future.Err():
						return fmt.Errorf("nats publish: %w", err)
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}
			return send, conn.Close, nil
		},
		closeAll: admin.Close,
	}, nil
}
