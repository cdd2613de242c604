package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/bench"
)

// TestBenchPingFlags: --ping-interval and --ping-timeout of bench (and
// bench floor) reach the producer client's options (--producer), with
// the client's defaults when not given; a value the client cannot take
// is a usage error. It replaces benchRun: not parallel.
func TestBenchPingFlags(t *testing.T) {
	var got *bench.Options
	defer func(run func(context.Context, bench.Options) (*bench.Result, error)) { benchRun = run }(benchRun)
	benchRun = func(_ context.Context, o bench.Options) (*bench.Result, error) {
		got = &o
		return &bench.Result{}, nil
	}
	producer := []string{"--producer", "--batch", "1", "--duration", "1s"}
	for _, tc := range []struct {
		name              string
		args              []string
		interval, timeout time.Duration
		wantCode          int
		wantErrOut        string
	}{
		{name: "defaults", args: append([]string{"bench"}, producer...), interval: client.DefaultPingInterval, timeout: client.DefaultPingTimeout},
		{name: "given", args: append([]string{"bench", "--ping-interval", "3s", "--ping-timeout", "4s"}, producer...), interval: 3 * time.Second, timeout: 4 * time.Second},
		{name: "no pings", args: append([]string{"bench", "--ping-interval", "-1s"}, producer...), interval: -time.Second, timeout: client.DefaultPingTimeout},
		{name: "floor", args: append([]string{"bench", "floor", "--floor-only=false", "--ping-interval", "2s"}, producer...), interval: 2 * time.Second, timeout: client.DefaultPingTimeout},
		{name: "no timeout", args: append([]string{"bench", "--ping-timeout", "0s"}, producer...), wantCode: 2, wantErrOut: "--ping-timeout must be positive"},
		{name: "interval 0", args: append([]string{"bench", "--ping-interval", "0s"}, producer...), wantCode: 2, wantErrOut: "--ping-interval must not be 0"},
	} {
		got = nil
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}, tc.args)
		if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErrOut) {
			t.Fatalf("%s: exit %d, stderr %q; want %d, %q", tc.name, code, stderr.String(), tc.wantCode, tc.wantErrOut)
		}
		if tc.wantCode != 0 {
			if got != nil {
				t.Fatalf("%s: the bench ran", tc.name)
			}
			continue
		}
		if got == nil || got.Conn.PingInterval != tc.interval || got.Conn.PingTimeout != tc.timeout {
			t.Fatalf("%s: bench options %+v; want ping interval %s, timeout %s", tc.name, got, tc.interval, tc.timeout)
		}
	}
}
