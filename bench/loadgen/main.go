// Command loadgen is the bench's load client (npm run bench): it drives one peer (the
// sessionstore server or the bare echo over gRPC, Redis, NATS JetStream or PostgreSQL) with the
// same shape of load, sustained for a fixed time after a warm-up, and prints JSON lines on
// stdout: {"event":"measuring"} when the measured window opens, then one result.
//
// The load: -streams sessions, one stream (or connection set) each; every request carries
// -batch messages; each stream keeps -window requests unanswered at most. A request is
// acknowledged when the peer answered all of it (for a sync request, after its fsync).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"
)

// requestVariants is how many distinct requests each stream cycles through.
const requestVariants = 16

type options struct {
	peer     string
	addr     string
	payloads string
	prefix   string
	streams  int
	batch    int
	window   int
	sync     bool
	warmup   time.Duration
	duration time.Duration
}

// result is the measured window's figures; the Node harness parses it.
type result struct {
	Event             string  `json:"event"`
	Messages          int64   `json:"messages"`
	Requests          int64   `json:"requests"`
	Seconds           float64 `json:"seconds"`
	MessagesPerSecond float64 `json:"messagesPerSecond"`
	P50Ms             float64 `json:"p50Ms"`
	P99Ms             float64 `json:"p99Ms"`
	// CPU (user + system) of this process per wall second of the window: 1 is one core.
	CPUPerWallSecond float64 `json:"cpuPerWallSecond"`
	StartedAtEpochMs int64   `json:"startedAtEpochMs"`
	EndedAtEpochMs   int64   `json:"endedAtEpochMs"`
}

func main() {
	var o options
	flag.StringVar(&o.peer, "peer", "grpc", "grpc, redis, nats or postgres")
	flag.StringVar(&o.addr, "addr", "", "host:port (grpc, redis), nats:// URL or postgres:// URL")
	flag.StringVar(&o.payloads, "payloads", "", "file of messages, one per line")
	flag.StringVar(&o.prefix, "prefix", "bench", "session ids are <prefix>-<stream>")
	flag.IntVar(&o.streams, "streams", 8, "concurrent sessions")
	flag.IntVar(&o.batch, "batch", 100, "messages per request")
	flag.IntVar(&o.window, "window", 16, "requests in flight per stream")
	flag.BoolVar(&o.sync, "sync", false, "durable requests (sessionstore's sync)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before the measured window")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "the measured window")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	payloads, err := readLines(o.payloads)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var p peer
	switch o.peer {
	case "grpc":
		p, err = newGrpcPeer(o)
	case "redis":
		p, err = newRedisPeer(o)
	case "nats":
		p, err = newNatsPeer(ctx, o)
	case "postgres":
		p, err = newPostgresPeer(ctx, o)
	default:
		err = fmt.Errorf("unknown -peer %q", o.peer)
	}
	if err != nil {
		return err
	}
	defer p.close()
	return drive(ctx, o, p, payloads)
}

// window is when the measured window opens and closes; acks inside it count.
type window struct{ start, end time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// tally is what one goroutine counted inside the window.
type tally struct {
	requests  int64
	latencies []time.Duration
}

func (t *tally) ack(w window, sent, acked time.Time) {
	if w.contains(acked) {
		t.requests++
		t.latencies = append(t.latencies, acked.Sub(sent))
	}
}

func drive(ctx context.Context, o options, p peer, payloads [][]byte) error {
	out := bufio.NewWriter(os.Stdout)
	now := time.Now()
	w := window{start: now.Add(o.warmup), end: now.Add(o.warmup + o.duration)}
	tallies := make(chan tally, o.streams*o.window)
	errs := make(chan error, o.streams*o.window)
	workers := 0
	for stream := 0; stream < o.streams; stream++ {
		requests := make([][][]byte, requestVariants)
		for v := range requests {
			offset := (stream*requestVariants + v) * o.batch
			for i := 0; i < o.batch; i++ {
				requests[v] = append(requests[v], payloads[(offset+i)%len(payloads)])
			}
		}
		session := fmt.Sprintf("%s-%d", o.prefix, stream)
		n, err := p.start(ctx, session, requests, w, tallies, errs)
		if err != nil {
			return err
		}
		workers += n
	}
	time.Sleep(time.Until(w.start))
	cpuStart := cpuSeconds()
	startedAt := time.Now()
	emit(out, map[string]string{"event": "measuring"})
	time.Sleep(time.Until(w.end))
	cpuEnd := cpuSeconds()
	endedAt := time.Now()
	var all []time.Duration
	var requests int64
	for i := 0; i < workers; i++ {
		select {
		case t := <-tallies:
			requests += t.requests
			all = append(all, t.latencies...)
		case err := <-errs:
			return err
		}
	}
	seconds := w.end.Sub(w.start).Seconds()
	messages := requests * int64(o.batch)
	emit(out, result{
		Event:             "done",
		Messages:          messages,
		Requests:          requests,
		Seconds:           seconds,
		MessagesPerSecond: float64(messages) / seconds,
		P50Ms:             percentileMs(all, 50),
		P99Ms:             percentileMs(all, 99),
		CPUPerWallSecond:  (cpuEnd - cpuStart) / endedAt.Sub(startedAt).Seconds(),
		StartedAtEpochMs:  startedAt.UnixMilli(),
		EndedAtEpochMs:    endedAt.UnixMilli(),
	})
	return nil
}

// peer is one system under load. start launches the goroutines of one stream, which send its
// requests (cycling through them) until the window ends, then each report one tally (or an
// error); it returns how many goroutines will report.
type peer interface {
	start(ctx context.Context, session string, requests [][][]byte, w window, tallies chan<- tally, errs chan<- error) (int, error)
	close()
}

// blockingPeer is a peer whose client answers one request per call: each stream runs -window
// workers, each with a connection of its own, one request in flight each.
type blockingPeer struct {
	window int
	// open makes a worker's client for a session; send stores one request through it.
	open func(ctx context.Context, session string) (send func(ctx context.Context, messages [][]byte) error, closeFn func(), err error)
	// closeAll releases what the peer shares between workers.
	closeAll func()
}

func (b blockingPeer) close() { b.closeAll() }

func (b blockingPeer) start(ctx context.Context, session string, requests [][][]byte, w window, tallies chan<- tally, errs chan<- error) (int, error) {
	for worker := 0; worker < b.window; worker++ {
		send, closeWorker, err := b.open(ctx, session)
		if err != nil {
			return 0, err
		}
		go func(first int) {
			defer closeWorker()
			var t tally
			for i := first; time.Now().Before(w.end); i += b.window {
				sent := time.Now()
				if err := send(ctx, requests[i%len(requests)]); err != nil {
					errs <- err
					return
				}
				t.ack(w, sent, time.Now())
			}
			tallies <- t
		}(worker)
	}
	return b.window, nil
}

func percentileMs(values []time.Duration, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	rank := int(float64(len(values))*p/100 + 0.999999)
	rank = min(len(values), max(1, rank))
	return float64(values[rank-1].Microseconds()) / 1000
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(usage.Utime) + tv(usage.Stime)
}

func emit(out *bufio.Writer, value any) {
	line, _ := json.Marshal(value)
	out.Write(append(line, '\n'))
	out.Flush()
}

func readLines(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) > 0 {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s holds no messages", path)
	}
	return lines, nil
}
