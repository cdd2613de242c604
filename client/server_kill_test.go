package client_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// serverChildEnv holds "<data dir> <address>" for TestServerChild.
const serverChildEnv = "WAIL_CLIENT_TEST_SERVER"

// TestServerChild is the child process of TestConsumersAcrossServerKill:
// a server with the default configuration (its log and store synced) on
// the data dir and address it is given, which prints "READY" once it
// listens and runs until it is killed (or its parent is gone).
func TestServerChild(t *testing.T) {
	spec := os.Getenv(serverChildEnv)
	if spec == "" {
		t.Skip("the child process of TestConsumersAcrossServerKill")
	}
	f := strings.Fields(spec)
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = f[0], f[1]
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println("FAILED", err)
		os.Exit(2)
	}
	go func() {
		parent := os.Getppid()
		for range time.Tick(200 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
	err = srv.Run(context.Background(), func(string) { fmt.Println("READY") })
	fmt.Println("FAILED", err)
	os.Exit(2)
}

// startServerChild starts TestServerChild on dir and addr and waits until
// it listens.
func startServerChild(t *testing.T, dir, addr string) *exec.Cmd {
	t.Helper()
	for range 50 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestServerChild$")
		cmd.Env = append(os.Environ(), serverChildEnv+"="+dir+" "+addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		sc := bufio.NewScanner(out)
		var last string
		for sc.Scan() {
			last = sc.Text()
			if last == "READY" {
				go func() {
					for sc.Scan() {
					}
				}()
				return cmd
			}
			if strings.HasPrefix(last, "FAILED") {
				break
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if !strings.Contains(last, "address already in use") {
			t.Fatalf("server child: %s", last)
		}
		time.Sleep(100 * time.Millisecond) // the killed one's port is still taken
	}
	t.Fatal("the server child never listened")
	return nil
}

// TestConsumersAcrossServerKill: the server process is killed (SIGKILL)
// while a writer writes, a subscription reads and a group member
// acknowledges each event, and started again on its data dir and
// address. The subscription resumes from its cursor: no offset twice, per
// key versions increasing; the member never gets again an event whose
// acknowledgement returned (durable once it returns); both get every
// acknowledged write.
func TestConsumersAcrossServerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server as a child process")
	}
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	srv := startServerChild(t, dir, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 3})); err != nil {
		t.Fatal(err)
	}
	type pos struct {
		p   int32
		off int64
	}
	var (
		mu      sync.Mutex
		errs    []string
		written = map[string]uint64{}
		subSeen = map[pos]bool{}
		subLast = map[string]uint64{}
		memMax  = map[string]uint64{}
		ackedTo = map[int32]int64{}
		subN    int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	rctx, stopReaders := context.WithCancel(ctx)
	reconnect := client.Reconnect{MinWait: 20 * time.Millisecond, MaxWait: 200 * time.Millisecond}
	sub, err := client.NewConsumer(rctx, c.Events, client.ConsumerConfig{Table: "t", From: "beginning", Reconnect: reconnect})
	if err != nil {
		t.Fatal(err)
	}
	member, err := client.NewConsumer(rctx, c.Events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Reconnect: reconnect})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer sub.Close()
		for {
			m, err := sub.Next(rctx)
			if err != nil {
				if rctx.Err() == nil {
					fail("subscription: %v", err)
				}
				return
			}
			k := string(m.Event.Key)
			mu.Lock()
			subN++
			if subSeen[pos{m.Partition, m.Offset}] {
				errs = append(errs, fmt.Sprintf("subscription: p%d@%d twice", m.Partition, m.Offset))
			}
			subSeen[pos{m.Partition, m.Offset}] = true
			if m.Event.Version <= subLast[k] {
				errs = append(errs, fmt.Sprintf("subscription: key %s version %d after %d", k, m.Event.Version, subLast[k]))
			}
			subLast[k] = m.Event.Version
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		defer member.Close()
		for {
			m, err := member.Next(rctx)
			if err != nil {
				if rctx.Err() == nil {
					fail("member: %v", err)
				}
				return
			}
			k := string(m.Event.Key)
			mu.Lock()
			if m.Offset < ackedTo[m.Partition] {
				errs = append(errs, fmt.Sprintf("member: p%d@%d again after an acknowledgement up to %d returned", m.Partition, m.Offset, ackedTo[m.Partition]))
			}
			memMax[k] = max(memMax[k], m.Event.Version)
			mu.Unlock()
			err = member.Ack(rctx, m)
			switch {
			case err == nil:
				mu.Lock()
				ackedTo[m.Partition] = max(ackedTo[m.Partition], m.Offset+1)
				mu.Unlock()
			case rctx.Err() != nil:
			case connect.CodeOf(err) == connect.CodeUnavailable, errors.Is(err, client.ErrAckRefused):
				// the server is down, or the member joined again: the event comes again
			default:
				fail("member: ack: %v", err)
			}
		}
	}()
	stopWriter := make(chan struct{})
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for i := 0; ; i++ {
			select {
			case <-stopWriter:
				return
			default:
			}
			k := fmt.Sprintf("k%d", rand.IntN(40))
			r, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: fmt.Appendf(nil, `{"i":%d}`, i)}))
			if err != nil {
				time.Sleep(10 * time.Millisecond) // the server is down
				continue
			}
			mu.Lock()
			written[k] = max(written[k], r.Msg.Result.Version)
			mu.Unlock()
		}
	}()
	waitEvents := func(n int) {
		for {
			mu.Lock()
			got := subN
			mu.Unlock()
			if got >= n {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("the subscription got %d events of %d", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for round := 1; round <= 2; round++ {
		waitEvents(300 * round)
		_ = srv.Process.Kill()
		_ = srv.Wait()
		time.Sleep(100 * time.Millisecond)
		srv = startServerChild(t, dir, addr)
	}
	waitEvents(900)
	close(stopWriter)
	<-wdone
	converged := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var d []string
		for k, v := range written {
			if subLast[k] < v || memMax[k] < v {
				d = append(d, fmt.Sprintf("%s: written v%d, subscription v%d, member v%d", k, v, subLast[k], memMax[k]))
			}
		}
		return d
	}
	for d := converged(); len(d) > 0; d = converged() {
		if ctx.Err() != nil {
			t.Errorf("acknowledged writes not delivered: %v", d)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopReaders()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i, e := range errs {
		if i == 15 {
			t.Errorf("... %d more", len(errs)-15)
			break
		}
		t.Error(e)
	}
}
