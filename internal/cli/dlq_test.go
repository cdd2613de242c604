package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

var (
	numbersRE = regexp.MustCompile(`[0-9]{12,}`)
	spacesRE  = regexp.MustCompile(` +`)
)

// step is one command line and what it must print.
type step struct {
	args     []string
	wantCode int
	want     []string      // substrings of stdout, compared loosely
	wantErr  string        // substring of stderr
	timeout  time.Duration // ends the command (tail); 0: none
}

// runSteps runs command lines against url in order.
func runSteps(t *testing.T, url string, steps []step) {
	t.Helper()
	for _, s := range steps {
		ctx, cancel := context.Background(), func() {}
		if s.timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, s.timeout)
		}
		code, out, errOut := runCLI(ctx, url, "", s.args...)
		cancel()
		out = loose(out)
		ok := code == s.wantCode && strings.Contains(errOut, s.wantErr)
		for _, w := range s.want {
			ok = ok && strings.Contains(out, loose(w))
		}
		if !ok {
			t.Errorf("wail %q: code %d\nstdout:\n%s\nstderr: %s\nwant code %d, stdout with %q, stderr with %q", s.args, code, out, errOut, s.wantCode, s.want, s.wantErr)
		}
	}
}

// loose makes CLI output comparable: versions and long numbers become N,
// runs of spaces (table columns) one space.
func loose(s string) string {
	return spacesRE.ReplaceAllString(numbersRE.ReplaceAllString(anyVersion(s), "N"), " ")
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	ctx := context.Background()
	runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1")
	servertest.Lose(t, srv, "t", "k1", "lost-k1", false)
	now := time.Now().UnixMicro()
	servertest.DeadLetters(t, srv, "t",
		&wailv1.DeadLetter{Table: "t", Key: []byte("k1"), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			Intents:       []*wailv1.Intent{{Table: "t", Key: []byte("k1"), Op: wailv1.Op_OP_UPSERT, Version: 5, IntentId: "7-1", CreatedAtUs: now}},
			IntentOffsets: []int64{12}, Error: "postgres: get t:\n timeout", Attempts: 5, FirstAttemptUs: now, LastAttemptUs: now,
			DeadAtUs: now, ResolverId: "host-7070"},
		&wailv1.DeadLetter{Table: "t", Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP, GapStartOffset: 3, GapEndOffset: 9,
			Error: "retention removed intents", DeadAtUs: now},
		&wailv1.DeadLetter{Table: "t", Key: []byte{0, 0xff}, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH, Permanent: true,
			Intents:       []*wailv1.Intent{{Table: "t", Key: []byte{0, 0xff}, Op: wailv1.Op_OP_UPSERT, Version: 6}, {Table: "t", Key: []byte{0, 0xff}, Op: wailv1.Op_OP_DELETE, Version: 8}},
			IntentOffsets: []int64{13, 14}, Error: "record too large", Attempts: 1})
	runSteps(t, url, []step{
		{args: []string{"dlq", "ls", "t"}, want: []string{
			"OFFSET  KIND                 PARTITION  KEY               VERSIONS",
			"0       read                 0          k1                5",
			"1       gap                  0          intents [3, 9)",
			"2       publish (permanent)  0          0x00ff            6..8 (2 intents)",
			"unsettled", "postgres: get t: timeout"}},
		{args: []string{"dlq", "ls", "t", "--limit", "1"}, want: []string{"0       read", "more: wail dlq ls t --after 0"}},
		{args: []string{"dlq", "ls", "t", "--limit", "1", "--after", "0"}, want: []string{"1       gap", "more: wail dlq ls t --after 1"}},
		{args: []string{"dlq", "ls", "t", "--json"}, want: []string{`"entries":[{"offset":"0"`, `"more":false`}},
		{args: []string{"dlq", "ls", "t", "--limit", "-1"}, wantCode: 2, wantErr: "--limit"},
		{args: []string{"dlq", "show", "t", "0"}, want: []string{
			"Key:            k1", "Kind:           read", "Attempts:       5", "Resolver:       host-7070",
			"State:          unsettled (wail dlq redrive t 0, or wail dlq drop t 0)",
			"OFFSET  OP      VERSION  INTENT ID  CREATED", "12      UPSERT  5        7-1"}},
		{args: []string{"dlq", "show", "t", "1"}, want: []string{"Lost intents:   offsets [3, 9) of the intent log partition"}},
		{args: []string{"dlq", "show", "t", "99"}, wantCode: 1, wantErr: "error: not_found: no dead letter at that offset"},
		{args: []string{"dlq", "show", "t", "x"}, wantCode: 2, wantErr: `offset "x"`},
		{args: []string{"dlq", "show", "nope", "0"}, wantCode: 1, wantErr: `error: not_found: table "nope" does not exist`},
		{args: []string{"dlq", "redrive", "t"}, wantCode: 2, wantErr: "name the offsets"},
		{args: []string{"dlq", "redrive", "t", "0", "--all"}, wantCode: 2, wantErr: "not both"},
		{args: []string{"dlq", "redrive"}, wantCode: 2, wantErr: "takes a TABLE"},
		{args: []string{"dlq", "redrive", "t", "0"}, want: []string{"0 redriven: intent logged at version N; the resolver publishes"}},
		{args: []string{"dlq", "redrive", "t", "0"}, want: []string{"0 redriven: intent logged at version N"}}, // a retry answers the same
		{args: []string{"dlq", "redrive", "t", "1"}, want: []string{"1 redriven: nothing to publish", "GAP letters: scanned 1 keys: 0 behind"}},
		{args: []string{"dlq", "show", "t", "1", "--json"}, want: []string{`"entry":{"offset":"1"`, `"kind":"DEAD_LETTER_KIND_GAP"`, `"action":"DEAD_LETTER_ACTION_REDRIVEN"`}},
		{args: []string{"dlq", "drop", "t", "2", "--json"}, want: []string{`"resolutions":[{"offset":"2","action":"DEAD_LETTER_ACTION_DROPPED"`}},
		{args: []string{"dlq", "redrive", "t", "--all"}, want: []string{"no dead letters to settle"}},
		{args: []string{"dlq", "drop", "t", "--all"}, want: []string{"no dead letters to settle"}},
		{args: []string{"dlq", "redrive", "t", "2", "--json"}, want: []string{`"action":"DEAD_LETTER_ACTION_DROPPED"`}}, // settled: its first resolution
		{args: []string{"dlq", "ls", "t", "--include-settled", "--limit", "1", "--after", "0", "--json"}, want: []string{`"entries":[{"offset":"1"`, `"more":true`}},
		{args: []string{"dlq", "ls", "t"}, want: []string{"no dead letters in table t"}},
		{args: []string{"dlq", "ls", "t", "--include-settled"}, want: []string{"redriven (intent vN)", "redriven (nothing to publish)", "dropped"}},
	})
}

// TestDLQRedriveLimit: a redrive lists at most --limit of the letters it
// settled and counts the others.
func TestDLQRedriveLimit(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	ctx := context.Background()
	runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1")
	var ls []*wailv1.DeadLetter
	for _, k := range []string{"k1", "k2", "k3"} {
		ls = append(ls, &wailv1.DeadLetter{Table: "t", Key: []byte(k), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			Intents: []*wailv1.Intent{{Table: "t", Key: []byte(k), Op: wailv1.Op_OP_UPSERT, Version: 5}}, IntentOffsets: []int64{12}})
	}
	servertest.DeadLetters(t, srv, "t", ls...)
	runSteps(t, url, []step{
		{args: []string{"dlq", "redrive", "t", "--all", "--limit", "-1"}, wantCode: 1, wantErr: "invalid_argument: limit -1"},
		{args: []string{"dlq", "redrive", "t", "--all", "--limit", "1"}, want: []string{
			"0 redriven: nothing to publish", "(2 more settled, not listed: 3 in all; `wail dlq ls t --include-settled` lists them)"}},
		{args: []string{"dlq", "redrive", "t", "1", "2", "--json", "--limit", "1"}, want: []string{`"resolutions":[{"offset":"1"`, `"resolutionsTotal":"2"`}},
	})
}

// TestDLQDropLimit: a drop lists at most --limit of the letters it
// settled and counts the others.
func TestDLQDropLimit(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	ctx := context.Background()
	runCLI(ctx, url, "", "table", "create", "t", "--partitions", "1")
	var ls []*wailv1.DeadLetter
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		ls = append(ls, &wailv1.DeadLetter{Table: "t", Key: []byte(k), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			Intents: []*wailv1.Intent{{Table: "t", Key: []byte(k), Op: wailv1.Op_OP_UPSERT, Version: 5}}, IntentOffsets: []int64{12}})
	}
	servertest.DeadLetters(t, srv, "t", ls...)
	runSteps(t, url, []step{
		{args: []string{"dlq", "drop", "t", "--all", "--limit", "-1"}, wantCode: 1, wantErr: "invalid_argument: limit -1"},
		{args: []string{"dlq", "drop", "t", "0", "--limit", "1"}, want: []string{"0 dropped"}},
		{args: []string{"dlq", "drop", "t", "--all", "--limit", "1"}, want: []string{
			"1 dropped", "(2 more settled, not listed: 3 in all; `wail dlq ls t --include-settled` lists them)"}},
		{args: []string{"dlq", "drop", "t", "0", "1", "--json", "--limit", "1"}, want: []string{`"resolutions":[{"offset":"0"`, `"resolutionsTotal":"2"`}},
	})
}

func TestReconcileCommand(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	ctx := context.Background()
	runCLI(ctx, url, "", "table", "create", "t", "--partitions", "2")
	runCLI(ctx, url, "", "put", "t", "ok", "v")
	servertest.Lose(t, srv, "t", "lost", "lost-lost", false)
	runSteps(t, url, []step{
		{args: []string{"table", "reconcile", "t", "--dry-run"}, want: []string{
			"scanned 2 keys: 1 behind (dry run: nothing logged), 0 in flight, 0 expired",
			"PARTITION  KEY   STORED  LAST EVENT", "lost  N       -"}},
		{args: []string{"table", "reconcile", "t"}, want: []string{"1 behind (intents logged; the resolver publishes their current state)"}},
		{args: []string{"table", "reconcile", "t", "--json"}, want: []string{`"keysScanned":"2"`, `"keysBehind":"0"`}},
		{args: []string{"tail", "t", "--from", "beginning"}, want: []string{"key=lost version=N value=lost-lost"}, timeout: 3 * time.Second},
		{args: []string{"table", "reconcile", "t", "--timeout", "1ns"}, wantCode: 1, wantErr: "error: deadline_exceeded"},
		{args: []string{"table", "reconcile", "nope"}, wantCode: 1, wantErr: `error: not_found: table "nope" does not exist`},
		{args: []string{"table", "reconcile"}, wantCode: 2, wantErr: "takes 1 argument"},
	})
}

// TestPrintReconcileExpired: a reconcile that left keys expired lists
// them, and the GAP letters they hold open with the command that drops
// them: a person decides (before, only a count said keys were left alone,
// and the GAP letters were settled all the same).
func TestPrintReconcileExpired(t *testing.T) {
	m := &wailv1.ReconcileTableResponse{KeysScanned: 3, KeysExpired: 2,
		ExpiredKeys:    []*wailv1.ReconciledKey{{Partition: 1, Key: []byte("old"), StoredVersion: 7}},
		OpenGapLetters: []int64{4, 9}}
	var b strings.Builder
	if err := printReconcile(&b, m, "t", false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 expired", "PARTITION  KEY  STORED\n1          old  7\n", "(1 more not listed)",
		"GAP letters left open: 4, 9:", "`wail dlq drop t 4 9`"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
