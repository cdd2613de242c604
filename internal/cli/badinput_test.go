package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBadInputRefusedLocally: a command line that cannot be right is
// refused before anything is sent, with the usage exit code (2) and a
// message naming what is wrong. --addr is an address nothing listens on:
// a command line that reached for the server would exit 1 (unavailable).
func TestBadInputRefusedLocally(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring of stderr
	}{
		// Empty names.
		{name: "tail empty table", args: []string{"tail", ""}, wantErr: "wail tail: TABLE is empty"},
		{name: "group ls empty table", args: []string{"group", "ls", ""}, wantErr: "TABLE is empty"},
		{name: "group describe empty group", args: []string{"group", "describe", "orders", ""}, wantErr: "GROUP is empty"},
		{name: "group reset empty table", args: []string{"group", "reset", "", "g", "--to", "latest"}, wantErr: "TABLE is empty"},
		{name: "group reset empty group", args: []string{"group", "reset", "orders", "", "--to", "latest"}, wantErr: "GROUP is empty"},
		{name: "consume empty table", args: []string{"consume", "", "--group", "g", "--member", "m"}, wantErr: "TABLE is empty"},
		{name: "table create empty name", args: []string{"table", "create", ""}, wantErr: "NAME is empty"},
		{name: "table describe empty name", args: []string{"table", "describe", ""}, wantErr: "NAME is empty"},
		{name: "table drop empty name", args: []string{"table", "drop", ""}, wantErr: "NAME is empty"},
		{name: "put empty table", args: []string{"put", "", "k", "v"}, wantErr: "TABLE is empty"},
		{name: "get empty key", args: []string{"get", "orders", ""}, wantErr: "KEY is empty"},
		{name: "delete empty key from a file", args: []string{"delete", "orders", "@-"}, wantErr: "KEY is empty"},
		{name: "put empty hex key", args: []string{"put", "orders", "--hex", "", "00"}, wantErr: "KEY is empty"},
		{name: "sink create empty name", args: []string{"sink", "create", "orders", "", "--webhook", "http://127.0.0.1:1/"}, wantErr: "NAME is empty"},
		{name: "sink drop empty table", args: []string{"sink", "drop", "", "s"}, wantErr: "TABLE is empty"},
		{name: "dlq ls empty table", args: []string{"dlq", "ls", ""}, wantErr: "TABLE is empty"},
		{name: "schema show empty subject", args: []string{"schema", "show", ""}, wantErr: "SUBJECT is empty"},
		{name: "schema show empty version", args: []string{"schema", "show", "orders-value", ""}, wantErr: "VERSION is empty"},
		{name: "schema diff empty subject", args: []string{"schema", "diff", "", "1"}, wantErr: "SUBJECT is empty"},
		{name: "schema register empty subject", args: []string{"schema", "register", "", "x.proto"}, wantErr: "SUBJECT is empty"},
		{name: "schema check empty file", args: []string{"schema", "check", "orders-value", ""}, wantErr: "FILE.proto is empty"},
		// cobra's own argument counts exited 1, as a failure of the server would.
		{name: "schema show too many", args: []string{"schema", "show", "a", "1", "2"}, wantErr: "wail schema show takes 1 to 2 argument(s) (SUBJECT [VERSION]), got 3"},
		{name: "schema diff too few", args: []string{"schema", "diff", "a"}, wantErr: "wail schema diff takes 2 to 3 argument(s) (SUBJECT OLD [NEW]), got 1"},
		{name: "schema ls too many", args: []string{"schema", "ls", "a", "b"}, wantErr: "wail schema ls takes 0 to 1 argument(s) ([PREFIX]), got 2"},
		{name: "dlq redrive empty table", args: []string{"dlq", "redrive", "", "--all"}, wantErr: "wail dlq redrive: TABLE is empty"},
		{name: "dlq drop empty table", args: []string{"dlq", "drop", "", "3"}, wantErr: "wail dlq drop: TABLE is empty"},
		// Names are UTF-8 text (protobuf strings): one that is not failed
		// with "internal: marshal message: string field contains invalid UTF-8".
		{name: "tail table not UTF-8", args: []string{"tail", "or\xffders"}, wantErr: `wail tail: TABLE "or\xffders" is not UTF-8 text`},
		{name: "group reset group not UTF-8", args: []string{"group", "reset", "orders", "g\xfe", "--to", "latest"}, wantErr: `GROUP "g\xfe" is not UTF-8 text`},
		{name: "a flag not UTF-8", args: []string{"group", "reset", "orders", "g", "--to", "\xff"}, wantErr: "an argument or flag is not UTF-8 text"},
		// An empty value given for a position was taken as no value: a
		// script's --cursor "$C" with C empty (no cursor saved) started at
		// the latest events, skipping what came meanwhile.
		{name: "tail empty cursor", args: []string{"tail", "orders", "--cursor", ""}, wantErr: "--cursor is empty"},
		{name: "tail empty from", args: []string{"tail", "orders", "--from", ""}, wantErr: "--from is empty"},
		{name: "consume empty start", args: []string{"consume", "orders", "--group", "g", "--member", "m", "--start", ""}, wantErr: "--start is empty"},
		{name: "consume bad start", args: []string{"consume", "orders", "--group", "g", "--member", "m", "--start", "-5m"},
			wantErr: `--start "-5m": use beginning, latest or snapshot`},
		// An empty --config ran on the built-in defaults (./wail-data, no
		// auth); an empty --addr took WAIL_ADDR or the default address.
		{name: "serve empty config", args: []string{"serve", "--config", ""}, wantErr: "--config is empty"},
		{name: "doctor empty config", args: []string{"doctor", "--config", ""}, wantErr: "--config is empty"},
		{name: "table ls empty addr", args: []string{"table", "ls", "--addr", ""}, wantErr: "--addr is empty"},
		// A serve flag given empty overrode the file's value with nothing:
		// --tls-client-ca "$CA" with CA unset dropped the client CA of the
		// file; --store "$KIND" unset ran on pebble.
		{name: "serve empty data dir", args: []string{"serve", "--data-dir", ""}, wantErr: "wail serve: --data-dir is empty"},
		{name: "serve empty client ca", args: []string{"serve", "--tls-client-ca", ""}, wantErr: "--tls-client-ca is empty"},
		{name: "serve empty store", args: []string{"serve", "--store", ""}, wantErr: "--store is empty"},
		{name: "proxy empty dsn", args: []string{"proxy", "--dsn", ""}, wantErr: "wail proxy: --dsn is empty"},
		{name: "doctor empty log", args: []string{"doctor", "--log", ""}, wantErr: "wail doctor: --log is empty"},
		{name: "sink create empty secret", args: []string{"sink", "create", "orders", "s", "--webhook", "http://127.0.0.1:1/", "--secret", ""}, wantErr: "--secret is empty"},
		// An empty connection file meant "not given": WAIL_CA (or the
		// other's variable) was taken instead, or no TLS at all.
		{name: "table ls empty ca", args: []string{"table", "ls", "--ca", ""}, wantErr: "--ca is empty"},
		{name: "table ls empty cert", args: []string{"table", "ls", "--cert", ""}, wantErr: "--cert is empty"},
		{name: "table ls empty key", args: []string{"table", "ls", "--key", ""}, wantErr: "--key is empty"},
		{name: "table ls empty token file", args: []string{"table", "ls", "--token-file", ""}, wantErr: "--token-file is empty"},
		// Durations the server keeps in milliseconds.
		{name: "create window under 1ms", args: []string{"table", "create", "t", "--visibility-window", "500us"},
			wantErr: "--visibility-window 500µs: give whole milliseconds"},
		{name: "create window not whole ms", args: []string{"table", "create", "t", "--visibility-window", "10.5ms"},
			wantErr: "--visibility-window 10.5ms: give whole milliseconds"},
		{name: "alter window under 1ms", args: []string{"table", "alter", "t", "--visibility-window", "1ns"},
			wantErr: "--visibility-window 1ns: give whole milliseconds"},
		{name: "alter retry time not whole ms", args: []string{"table", "alter", "t", "--max-retry-time", "1500us"},
			wantErr: "--max-retry-time 1.5ms: give whole milliseconds"},
		{name: "sink request timeout under 1ms", args: []string{"sink", "create", "orders", "s", "--webhook", "http://127.0.0.1:1/", "--request-timeout", "100us"},
			wantErr: "--request-timeout 100µs: give whole milliseconds"},
		{name: "sink negative backoff", args: []string{"sink", "create", "orders", "s", "--webhook", "http://127.0.0.1:1/", "--backoff-min", "-1s"},
			wantErr: "--backoff-min -1s must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if !slices.Contains(args, "--addr") && !slices.Contains([]string{"serve", "proxy", "resolve"}, args[0]) {
				args = append(args, "--addr", addr)
			}
			code, out, errOut := runCLI(context.Background(), addr, "", args...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("%q: code %d, want 2 and %q on stderr; stdout %q, stderr %q", tt.args, code, tt.wantErr, out, errOut)
			}
		})
	}
}

// TestEmptyValueAccepted: an empty VALUE is a value (put of "" is no
// mistake): it is not refused locally; the unreachable server answers.
func TestEmptyValueAccepted(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	code, _, errOut := runCLI(context.Background(), addr, "", "put", "orders", "k", "", "--addr", addr)
	if code != 1 || !strings.Contains(errOut, "unavailable") {
		t.Fatalf("code %d: %s", code, errOut)
	}
}

// endless is a reader that never ends (a device, a pipe that keeps
// writing).
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// TestArgDecoderBounded: @- and @FILE read at most the decoder's limit
// (the largest value a server takes): @/dev/zero, or a pipe that never
// ends, grew without bound until memory ran out.
func TestArgDecoderBounded(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(file, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newArgDecoder(encText, endless{})
	d.limit = 1024
	if _, err := d.decode("VALUE", "@-"); err == nil || !strings.Contains(err.Error(), "VALUE: stdin holds more than 1024 bytes") {
		t.Fatalf("stdin: %v", err)
	}
	if _, err := d.decode("VALUE", "@"+file); err == nil || !strings.Contains(err.Error(), "VALUE: "+file+" holds more than 1024 bytes") {
		t.Fatalf("file: %v", err)
	}
	d.limit = 2048
	if b, err := d.decode("VALUE", "@"+file); err != nil || len(b) != 2048 {
		t.Fatalf("a file of the limit: %d bytes, %v", len(b), err)
	}
}

// TestProtoFileChecked: a .proto file is read up to a bound (a device or an
// endless pipe grew until memory ran out) and must be UTF-8 (the registry's
// JSON replaced each bad byte with U+FFFD: the schema registered was not
// the file; a typed table's failed as "internal: marshal message").
func TestProtoFileChecked(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	bad := filepath.Join(t.TempDir(), "bad.proto")
	if err := os.WriteFile(bad, []byte("syntax = \"proto3\";\n// caf\xe9\nmessage V {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"schema", "register", "orders-value", bad}, bad + ": line 2, column 7: byte 0xe9 is not UTF-8 text"},
		{[]string{"schema", "diff", "orders-value", bad, "1"}, bad + ": line 2, column 7: byte 0xe9 is not UTF-8 text"},
		{[]string{"table", "create", "orders", "--value-proto", bad}, "--value-proto: " + bad + ": line 2, column 7: byte 0xe9 is not UTF-8 text"},
		{[]string{"schema", "check", "orders-value", "/dev/zero"}, "/dev/zero: larger than 16 MiB"},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(context.Background(), addr, "", append(tt.args, "--addr", addr)...)
		if code != 2 || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("%q: code %d, want 2 and %q: %s", tt.args, code, tt.wantErr, errOut)
		}
	}
}
