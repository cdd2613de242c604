package console_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestTailThatNeverReads: a tail whose client stops reading while events
// flow (its socket buffers full) ends once a write waits api.write_timeout,
// and gives its console.max_tails slot back: the server neither holds its
// events in memory nor keeps its readers of every partition.
func TestTailThatNeverReads(t *testing.T) {
	t.Parallel()
	base := servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "t", Partitions: 2}}
		c.Console.MaxTails = 1
		c.API.WriteTimeout = 300 * time.Millisecond
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprint(conn, "GET /console/api/tail?table=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	// Its status line, then nothing more is read. Read first: a probe's
	// tail (tailStatus) holds the slot until the server sees the probe
	// gone, and one that came first (a loaded machine) made this tail 429.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	status, err := bufio.NewReaderSize(conn, 16).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("the tail that will never read: %q, %v", status, err)
	}
	tailStatus := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/console/api/tail?table=t", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for tailStatus() != http.StatusTooManyRequests { // the stalled tail holds the slot
		if time.Now().After(deadline) {
			t.Fatal("the stalled tail never took the slot")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, base)
	value := []byte(strings.Repeat("v", 500))
	deadline = time.Now().Add(60 * time.Second)
	for batch := 0; ; batch++ {
		muts := make([]*wailv1.Mutation, 1000)
		for i := range muts {
			muts[i] = &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k%d-%d", batch, i), Value: value}
		}
		if _, err := pc.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
			t.Fatal(err)
		}
		if tailStatus() == http.StatusOK {
			t.Logf("the slot came back after %d batches of 1000 events", batch+1)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the tail that never reads still holds its slot")
		}
	}
}
