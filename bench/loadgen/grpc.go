package main

import (
	"context"
	"errors"
	"io"
	"time"

	sessionstorev1 "github.com/sessionstore/sessionstore/clients/go/gen/sessionstore/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// grpcPeer drives the SessionStore service (the server or the echo) through the generated Go
// client: one HTTP/2 connection, one Append stream per session, -window requests unanswered on
// each. Acks come in request order, so send times are matched to them first in, first out.
type grpcPeer struct {
	conn   *grpc.ClientConn
	client sessionstorev1.SessionStoreClient
	sync   bool
	window int
}

func newGrpcPeer(o options) (peer, error) {
	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &grpcPeer{conn: conn, client: sessionstorev1.NewSessionStoreClient(conn), sync: o.sync, window: o.window}, nil
}

func (g *grpcPeer) start(ctx context.Context, session string, requests [][][]byte, w window, tallies chan<- tally, errs chan<- error) (int, error) {
	stream, err := g.client.Append(ctx)
	if err != nil {
		return 0, err
	}
	prepared := make([]*sessionstorev1.AppendRequest, len(requests))
	for i, messages := range requests {
		texts := make([]string, len(messages))
		for j, message := range messages {
			texts[j] = string(message)
		}
		prepared[i] = &sessionstorev1.AppendRequest{SessionId: session, Messages: texts, Sync: g.sync}
	}
	// Its capacity is the window: a send waits for an ack when -window are unanswered.
	inFlight := make(chan time.Time, g.window)
	go func() {
		for i := 0; time.Now().Before(w.end); i++ {
			inFlight <- time.Now()
			if err := stream.Send(prepared[i%len(prepared)]); err != nil {
				errs <- err
				return
			}
		}
		if err := stream.CloseSend(); err != nil {
			errs <- err
		}
	}()
	go func() {
		var t tally
		for {
			if _, err := stream.Recv(); err != nil {
				if errors.Is(err, io.EOF) {
					tallies <- t
				} else {
					errs <- err
				}
				return
			}
			t.ack(w, <-inFlight, time.Now())
		}
	}()
	return 1, nil
}

func (g *grpcPeer) close() { g.conn.Close() }
