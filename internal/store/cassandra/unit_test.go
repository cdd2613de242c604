package cassandra

// Tests that need no cluster: levels and replication, names, error
// classification, the write bound, settings parsing.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

func TestOverlaps(t *testing.T) {
	t.Parallel()
	one, two, lq, q, all, eq, lone := gocql.One, gocql.Two, gocql.LocalQuorum, gocql.Quorum, gocql.All, gocql.EachQuorum, gocql.LocalOne
	single := Replication{"dc1": 3}
	multi := Replication{"dc1": 3, "dc2": 3}
	simple := Replication{"": 3}
	tests := []struct {
		r           Replication
		write, read Consistency
		want        bool
	}{
		{single, lq, lq, true},
		{single, lq, one, false},
		{single, one, one, false},
		{single, one, all, true},
		{single, all, one, true},
		{single, q, q, true},
		{single, two, two, true},
		{single, lone, lq, false},
		{simple, lq, lq, true}, // LOCAL_* count every replica under SimpleStrategy
		{simple, one, q, false},
		{multi, lq, lq, true},   // writers and readers share dc1
		{multi, lq, q, false},   // QUORUM (4 of 6) may take 3 in dc2 and 1 in dc1
		{multi, lq, all, true},  // ALL sees every replica
		{multi, eq, lq, true},   // EACH_QUORUM writes a quorum in dc1 too
		{multi, q, q, true},     // 4 + 4 > 6
		{multi, one, eq, false}, // the one replica may be outside both quorums
		{multi, eq, eq, true},
		{Replication{"dc1": 2}, lq, lq, true}, // 2 + 2 > 2
		{Replication{"dc1": 1}, one, one, true},
		// LOCAL_ONE counts its one replica in the local data center: with
		// one replica there, writers and readers of dc1 share it
		{Replication{"dc1": 1, "dc2": 3}, lone, lone, true},
	}
	for _, tc := range tests {
		if got := tc.r.Overlaps(tc.write, tc.read, "dc1"); got != tc.want {
			t.Errorf("replication %v: writes at %s, reads at %s: overlap %v, want %v", tc.r, levelName(tc.write), levelName(tc.read), got, tc.want)
		}
	}
}

func TestSatisfiable(t *testing.T) {
	t.Parallel()
	r := Replication{"dc1": 2, "dc2": 1}
	for c, want := range map[Consistency]string{
		gocql.One: "", gocql.Two: "", gocql.Three: "", gocql.All: "", gocql.LocalQuorum: "", gocql.EachQuorum: "",
	} {
		if err := r.Satisfiable(c, "dc1"); (err == nil) != (want == "") {
			t.Errorf("%s: %v", levelName(c), err)
		}
	}
	if err := (Replication{"dc1": 2}).Satisfiable(gocql.Three, "dc1"); err == nil || !strings.Contains(err.Error(), "needs 3 replicas") {
		t.Errorf("THREE of 2: %v", err)
	}
	if err := (Replication{"dc1": 3}).Satisfiable(gocql.LocalQuorum, "dc9"); err == nil || !strings.Contains(err.Error(), `data center "dc9"`) {
		t.Errorf("LOCAL_QUORUM in a data center without replicas: %v", err)
	}
	if err := (Replication{"dc1": 3}).Satisfiable(gocql.LocalOne, "dc9"); err == nil || !strings.Contains(err.Error(), `data center "dc9"`) {
		t.Errorf("LOCAL_ONE in a data center without replicas: %v", err)
	}
	// A level that needs no replica (ANY; a serial level) promises nothing.
	for _, c := range []Consistency{gocql.Any, gocql.Consistency(gocql.Serial)} {
		if err := (Replication{"dc1": 3}).Satisfiable(c, "dc1"); err == nil {
			t.Errorf("%s: satisfiable", levelName(c))
		}
	}
}

func TestParseReplication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts    map[string]string
		want    string // CQL
		wantErr string
	}{
		{map[string]string{"class": "SimpleStrategy", "replication_factor": "3"}, "{'class': 'SimpleStrategy', 'replication_factor': 3}", ""},
		{map[string]string{"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc2": "3", "dc1": "2"},
			"{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 3}", ""},
		{map[string]string{"class": "NetworkTopologyStrategy", "dc1": "3", "dc2": "0"}, "{'class': 'NetworkTopologyStrategy', 'dc1': 3}", ""},
		{map[string]string{"class": "NetworkTopologyStrategy", "it's": "1"}, "{'class': 'NetworkTopologyStrategy', 'it''s': 1}", ""},
		{map[string]string{"class": "LocalStrategy"}, "", "use SimpleStrategy or NetworkTopologyStrategy"},
		{map[string]string{"class": "SimpleStrategy", "replication_factor": "x"}, "", "is not a replication factor"},
		{map[string]string{"class": "SimpleStrategy", "dc1": "3"}, "", "does not go with"},
		{map[string]string{"class": "NetworkTopologyStrategy", "replication_factor": "3"}, "", "does not go with"},
		{map[string]string{"class": "NetworkTopologyStrategy", "dc1": "0"}, "", "has no replicas"},
		{map[string]string{"class": "SimpleStrategy", "replication_factor": "-1"}, "", "is not a replication factor"},
	}
	for _, tc := range tests {
		r, err := ParseReplication(tc.opts)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: %v, want %q", tc.opts, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.opts, err)
		case r.CQL() != tc.want:
			t.Errorf("%v: %s, want %s", tc.opts, r.CQL(), tc.want)
		}
	}
}

func TestParseConsistency(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"one", "TWO", "three", "quorum", "all", "local_quorum", "Each_Quorum", " local_one "} {
		c, err := ParseConsistency(name)
		if err != nil || levelName(c) != strings.ToLower(strings.TrimSpace(name)) {
			t.Errorf("%q: %v, %v", name, levelName(c), err)
		}
	}
	for _, name := range []string{"any", "serial", "local_serial", "", "quorumm"} {
		if _, err := ParseConsistency(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestTableName(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	names := []string{"a", "orders", strings.Repeat("a", 43), strings.Repeat("a", 44), strings.Repeat("a", 63), strings.Repeat("a", 62) + "b",
		strings.Repeat("b", 25) + "_" + strings.Repeat("c", 30)}
	for _, n := range names {
		got, err := tableName(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > maxTableName || got == catalogTable {
			t.Errorf("%q -> %q (%d characters)", n, got, len(got))
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q both map to %q", prev, n, got)
		}
		seen[got] = n
	}
	if got, _ := tableName("orders"); got != "wail_orders" {
		t.Errorf("orders -> %q", got)
	}
	if _, err := tableName("Bad-Name"); err == nil {
		t.Error("an invalid name was accepted")
	}
	a, again := tableID("ks", "wail_a"), tableID("ks", "wail_a")
	if a != again || a == tableID("ks2", "wail_a") || a == tableID("ks", "wail_b") {
		t.Error("table ids are not derived from keyspace and table alone")
	}
	if id := tableID("ks", "wail_a"); id[6]>>4 != 8 || id[8]>>6 != 2 {
		t.Errorf("table id %s: not a version-8 RFC 4122 UUID", id)
	}
	// Generation 0 is the name tables had before generations (they keep
	// it); every later generation has a name, and so an id, of its own,
	// which tells its generation back.
	long := "a" + strings.Repeat("b", 62)
	cnames := map[string]string{}
	for _, n := range []string{"a", "a_1", "a1", "g1_a", "orders", long, long[:62] + "c", long[:43], long[:42]} {
		for _, gen := range []int64{0, 1, 2, 10, 11, 1 << 62} {
			cname := generationName(n, gen)
			if len(cname) > maxTableName || !isWailTable(cname) {
				t.Errorf("%s generation %d: Cassandra table %q: too long, or not seen as wail's", n, gen, cname)
			}
			pair := fmt.Sprintf("%s generation %d", n, gen)
			if other, ok := cnames[cname]; ok {
				t.Errorf("%s and %s share Cassandra table %s", other, pair, cname)
			}
			cnames[cname] = pair
			if got, ok := generationOfName(n, cname); !ok || got != gen {
				t.Errorf("%s: %s tells generation %d, %v", pair, cname, got, ok)
			}
		}
	}
	if got := generationName("orders", 0); got != "wail_orders" {
		t.Errorf("generation 0 of orders: %q", got)
	}
	if got := generationName("orders", 3); got != "wailg3_orders" {
		t.Errorf("generation 3 of orders: %q", got)
	}
	for _, other := range []string{"wail_orders2", "wailg3_orders2", "wail__catalog", "wailg_orders", "wailgx_orders"} {
		if g, ok := generationOfName("orders", other); ok {
			t.Errorf("%s seen as generation %d of orders", other, g)
		}
	}
}

// requestErr is an error as Cassandra answers it (gocql.RequestError).
type requestErr struct {
	code int
	msg  string
}

func (e requestErr) Code() int       { return e.code }
func (e requestErr) Message() string { return e.msg }
func (e requestErr) Error() string   { return e.msg }

func TestClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err                     error
		notApplied, unavailable bool
		unknownTable            bool
	}{
		{requestErr{gocql.ErrCodeUnavailable, "Cannot achieve consistency level"}, true, true, false},
		{requestErr{gocql.ErrCodeBootstrapping, "bootstrapping"}, true, true, false},
		{requestErr{gocql.ErrCodeWriteTimeout, "Operation timed out"}, false, true, false},
		{requestErr{gocql.ErrCodeWriteFailure, "failure"}, false, true, false},
		{requestErr{gocql.ErrCodeOverloaded, "overloaded"}, false, true, false},
		{requestErr{gocql.ErrCodeReadTimeout, "Operation timed out - received only 2 responses."}, false, true, false},
		// a replica could not read the rows: the key's problem, not an outage
		{requestErr{gocql.ErrCodeReadFailure, "Operation failed - received 1 responses and 1 failures: READ_TOO_MANY_TOMBSTONES"}, false, false, false},
		{requestErr{gocql.ErrCodeServer, "server error"}, false, false, false},
		{requestErr{gocql.ErrCodeInvalid, "table wail_x does not exist"}, true, false, true},
		{requestErr{gocql.ErrCodeInvalid, "unconfigured table wail_x"}, true, false, true},
		{requestErr{gocql.ErrCodeInvalid, "Key may not be empty"}, true, false, false},
		{requestErr{gocql.ErrCodeSyntax, "line 1"}, true, false, false},
		{fmt.Errorf("send: %w", gocql.ErrNoConnections), true, true, false},
		{gocql.ErrConnectionClosed, false, true, false},
		{gocql.ErrTimeoutNoResponse, false, true, false},
		{context.DeadlineExceeded, false, true, false},
		{fmt.Errorf("send: %w", gocql.ErrNoStreams), true, true, false},
		{requestErr{gocql.ErrCodeInvalid, "Keyspace wail does not exist"}, true, false, false},
		{errors.New("something else"), false, false, false},
	}
	s := &Store{}
	for _, tc := range tests {
		if got := notApplied(tc.err); got != tc.notApplied {
			t.Errorf("%v: notApplied %v, want %v", tc.err, got, tc.notApplied)
		}
		c := s.classify(context.Background(), tc.err)
		if got := errors.Is(c, store.ErrUnavailable); got != tc.unavailable {
			t.Errorf("%v: unavailable %v, want %v", tc.err, got, tc.unavailable)
		}
		if got := errors.Is(c, store.ErrUnknownTable); got != tc.unknownTable {
			t.Errorf("%v: unknown table %v, want %v", tc.err, got, tc.unknownTable)
		}
	}
	// The caller's own context ended: not the cluster's unavailability.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if errors.Is(s.classify(ctx, context.Canceled), store.ErrUnavailable) {
		t.Error("a cancelled caller is reported as an unavailable store")
	}
	if errors.Is(s.classify(ctx, gocql.ErrTimeoutNoResponse), store.ErrUnavailable) {
		t.Error("a timeout after the caller's own context ended is reported as an unavailable store")
	}
	if !notApplied(gocql.ErrSessionClosed) {
		t.Error("a write on a closed session: not notApplied")
	}
	s.closed.Store(true)
	if !errors.Is(s.classify(context.Background(), gocql.ErrConnectionClosed), store.ErrClosed) {
		t.Error("after Close: not ErrClosed")
	}
}

// TestSendable: an INSERT goes out only with at least the cluster's
// write bound left before the write's deadline, and it runs under a
// deadline that much earlier: a send delayed after the check (a prepare
// round trip on a node that has not prepared it, a re-prepare after
// UNPREPARED, a slow connection) must not go out later than that, or a
// replica could apply it up to the bound past the write's deadline, after
// the resolver gave up on the intent (a stored version without an event).
func TestSendable(t *testing.T) {
	t.Parallel()
	s := &Store{writeFloor: 2 * time.Second}
	s.learnRowLimit(nil)
	now := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(1999*time.Millisecond))
	defer cancel()
	if _, _, err := s.sendable(ctx, now); !errors.Is(err, store.ErrNotApplied) || !strings.Contains(err.Error(), "write_request_timeout (2s)") {
		t.Errorf("1.999s left, 2s bound: %v", err)
	}
	for _, left := range []time.Duration{2 * time.Second, 5 * time.Second} {
		ctx2, cancel2 := context.WithDeadline(context.Background(), now.Add(left))
		sctx, done, err := s.sendable(ctx2, now)
		if err != nil {
			t.Errorf("%s left, 2s bound: %v", left, err)
		} else if d, _ := sctx.Deadline(); !d.Equal(now.Add(left - 2*time.Second)) {
			t.Errorf("%s left, 2s bound: the INSERT runs until %s after the check, want %s (it could go out later)", left, d.Sub(now), left-2*time.Second)
		}
		done()
		cancel2()
	}
	sctx, done, err := s.sendable(context.Background(), now)
	defer done()
	if _, ok := sctx.Deadline(); err != nil || ok {
		t.Errorf("no deadline: %v, deadline %v", err, ok)
	}
}

func TestParseCassandraDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"2000ms": 2 * time.Second, "2s": 2 * time.Second, "500": 500 * time.Millisecond, " 1m ": time.Minute,
		"1500milliseconds": 1500 * time.Millisecond, "3seconds": 3 * time.Second, "1h": time.Hour,
	} {
		if got, err := parseCassandraDuration(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-1s", "ms"} {
		if _, err := parseCassandraDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzParseCassandraDuration: settings come from the nodes; a value wail
// cannot read is an error, never a panic or a negative bound.
func FuzzParseCassandraDuration(f *testing.F) {
	for _, s := range []string{"2000ms", "2s", "500", "1m", "1500milliseconds", "", "PT2S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseCassandraDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("%q -> %v", s, d)
		}
	})
}

// FuzzParseReplication: a keyspace's replication comes from the cluster
// (system_schema.keyspaces); what ParseReplication accepts renders as CQL
// that parses back to the same replication.
func FuzzParseReplication(f *testing.F) {
	f.Add("SimpleStrategy", "replication_factor", "3", "", "")
	f.Add("NetworkTopologyStrategy", "dc1", "3", "dc2", "2")
	f.Fuzz(func(t *testing.T, class, k1, v1, k2, v2 string) {
		opts := map[string]string{"class": class, k1: v1}
		if k2 != "" {
			opts[k2] = v2
		}
		r, err := ParseReplication(opts)
		if err != nil {
			return
		}
		if r.Total() <= 0 {
			t.Fatalf("%v: accepted with %d replicas", opts, r.Total())
		}
		for dc, n := range r {
			if n <= 0 {
				t.Fatalf("%v: data center %q with %d replicas", opts, dc, n)
			}
		}
	})
}

func TestReadRetry(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]gocql.RetryType{
		requestErr{gocql.ErrCodeUnavailable, "Cannot achieve consistency level ALL"}: gocql.RetryNextHost,
		requestErr{gocql.ErrCodeReadTimeout, "Operation timed out"}:                  gocql.RetryNextHost,
		requestErr{gocql.ErrCodeBootstrapping, "bootstrapping"}:                      gocql.RetryNextHost,
		requestErr{gocql.ErrCodeOverloaded, "overloaded"}:                            gocql.RetryNextHost,
		// one replica could not read (a corrupt sstable): another may
		requestErr{gocql.ErrCodeReadFailure, "Operation failed"}:        gocql.RetryNextHost,
		requestErr{gocql.ErrCodeWriteTimeout, "Operation timed out"}:    gocql.Rethrow,
		gocql.ErrTimeoutNoResponse:                                      gocql.RetryNextHost,
		gocql.ErrConnectionClosed:                                       gocql.RetryNextHost,
		requestErr{gocql.ErrCodeInvalid, "table wail_x does not exist"}: gocql.Rethrow,
		requestErr{gocql.ErrCodeServer, "server error"}:                 gocql.Rethrow,
		errors.New("something else"):                                    gocql.Rethrow,
	} {
		if got := readRetry.GetRetryType(err); got != want {
			t.Errorf("%v: retry type %v, want %v", err, got, want)
		}
	}
	// readTries coordinators in all: the first and readTries-1 more.
	for n, want := range map[int]bool{0: true, readTries - 1: true, readTries: false} {
		if got := readRetry.Attempt(attempts(n)); got != want {
			t.Errorf("after %d attempts: another %v, want %v", n, got, want)
		}
	}
	// A read goes to another node after a quarter of the query timeout,
	// at most readSpeculateAfter.
	for timeout, want := range map[time.Duration]time.Duration{time.Second: 250 * time.Millisecond, time.Minute: readSpeculateAfter} {
		if got := (&Store{timeout: timeout}).speculateAfter(); got != want {
			t.Errorf("query timeout %s: speculates after %s, want %s", timeout, got, want)
		}
	}
}

// attempts is a query tried n times (TestReadRetry).
type attempts int

func (n attempts) Attempts() int                   { return int(n) }
func (attempts) SetConsistency(gocql.Consistency)  {}
func (attempts) GetConsistency() gocql.Consistency { return gocql.One }
func (attempts) Context() context.Context          { return context.Background() }

func TestParseCassandraSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"16MiB", 16 << 20}, {"16384KiB", 16 << 20}, {"53687091B", 53687091}, {"16mib", 16 << 20}, {"1GiB", 1 << 30}, {"1024", 1024}, {" 2 KiB ", 2048},
		{"", -1}, {"MiB", -1}, {"16 furlongs", -1}, {"-1MiB", -1}, {"99999999999999999GiB", -1},
	} {
		got, err := parseCassandraSize(tc.in)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("%q: %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestLearnRowLimit: the row limit is the smallest frame or mutation
// limit any node told (either spelling), less the slack, and Cassandra's
// defaults when none told; a null setting is not told.
func TestLearnRowLimit(t *testing.T) {
	node := func(addr string, settings ...string) Node {
		n := Node{Address: addr}
		for i := 0; i < len(settings); i += 2 {
			if !sizeSetting(&n, settings[i], settings[i+1]) {
				t.Fatalf("%s is not a size setting", settings[i])
			}
		}
		return n
	}
	tests := []struct {
		name  string
		nodes []Node
		want  int
		by    string
	}{
		{"none told", []Node{{Address: "a"}}, 16<<20 - rowSlack, "Cassandra's default"},
		{"defaults", []Node{node("a", "native_transport_max_frame_size", "16MiB", "max_mutation_size", "16384KiB", "max_mutation_size_in_kb", "16384")},
			16<<20 - rowSlack, "native_transport_max_frame_size=16777216 bytes on Cassandra node a"},
		{"smaller segments on one node", []Node{
			node("a", "native_transport_max_frame_size", "32MiB", "max_mutation_size", ""),
			node("b", "native_transport_max_frame_size_in_mb", "32", "max_mutation_size_in_kb", "4096"),
		}, 4<<20 - rowSlack, "max_mutation_size=4194304 bytes on Cassandra node b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Store
			s.learnRowLimit(tc.nodes)
			got, by := s.MutationLimit()
			if got != tc.want || !strings.Contains(by, tc.by) {
				t.Fatalf("limit %d (%s), want %d (%s)", got, by, tc.want, tc.by)
			}
		})
	}
	if n := node("a", "max_mutation_size", "sixteen"); n.Err == nil {
		t.Error("a size that is not one was taken")
	}
}

// TestRowLimitRefresh: the row limit follows the cluster after Open: a
// node added (or restarted with other settings) is seen once the limit
// is rowLimitTTL old, or at once after a write refused as too large; a
// node that does not answer counts with what it told last, a node
// removed no more. MutationLimit never waits for the nodes.
func TestRowLimitRefresh(t *testing.T) {
	const mib = 1 << 20
	sizes := func(addr string, frame, mutation int64) Node {
		return Node{Address: addr, HostID: "id-" + addr, Answered: true, MaxFrameSize: frame, MaxMutationSize: mutation}
	}
	silent := func(addr string) Node { return Node{Address: addr, HostID: "id-" + addr} }
	now := time.Unix(1000, 0)
	var cluster []Node
	asked := 0
	s := &Store{now: func() time.Time { return now }, bgCtx: t.Context()}
	s.askLimits = func(context.Context) ([]Node, error) { asked++; return cluster, nil }
	s.learnRowLimit([]Node{sizes("a", 16*mib, 16*mib)}) // as Open
	limit := func() (int, string) {
		t.Helper()
		s.MutationLimit() // starts a refresh when one is due
		s.bg.Wait()
		return s.MutationLimit()
	}
	steps := []struct {
		name    string
		cluster []Node
		advance time.Duration
		refused error // a write refused with it first
		want    int
		by      string
		asks    int
	}{
		{"node b added, within the TTL", []Node{sizes("a", 16*mib, 16*mib), sizes("b", 16*mib, 8*mib)}, rowLimitTTL / 2, nil,
			16*mib - rowSlack, "node a", 0},
		{"node b added, after the TTL", nil, rowLimitTTL / 2, nil, 8*mib - rowSlack, "max_mutation_size=8388608 bytes on Cassandra node b", 1},
		{"node b does not answer", []Node{sizes("a", 16*mib, 16*mib), silent("b")}, rowLimitTTL, nil,
			8*mib - rowSlack, "node b", 2},
		{"node b removed", []Node{sizes("a", 16*mib, 16*mib)}, rowLimitTTL, nil, 16*mib - rowSlack, "node a", 3},
		{"node a restarted with smaller frames: a write refused", []Node{sizes("a", 4*mib, 16*mib)}, time.Second,
			errors.New("Request is too big: length 5000000 exceeds maximum allowed length 4194304."), 4*mib - rowSlack,
			"native_transport_max_frame_size=4194304 bytes on Cassandra node a", 4},
		{"another error does not ask", []Node{sizes("a", 2*mib, 16*mib)}, time.Second, errors.New("Operation timed out"),
			4*mib - rowSlack, "node a", 4},
		{"node a answers, its settings do not: what it told last", []Node{sizes("a", 0, 0)}, rowLimitTTL, nil,
			4*mib - rowSlack, "native_transport_max_frame_size=4194304 bytes on Cassandra node a", 5},
	}
	for _, st := range steps {
		if st.cluster != nil {
			cluster = st.cluster
		}
		now = now.Add(st.advance)
		if st.refused != nil {
			s.noteWriteError(st.refused)
		}
		got, by := limit()
		if got != st.want || !strings.Contains(by, st.by) || asked != st.asks {
			t.Fatalf("%s: limit %d (%s) after %d asks, want %d (%s) after %d", st.name, got, by, asked, st.want, st.by, st.asks)
		}
	}
}

// TestWriteBoundFollowsTheCluster: the bound of a write (how long a
// replica may still apply it) follows the nodes' write_request_timeout
// after Open, as the row limit does: a node restarted with a larger one
// (or given it by nodetool settimeout) is seen once the bound is
// rowLimitTTL old, and an INSERT is then sent only with that much time
// left; a node that does not answer counts with what it told last, a
// node removed no more, and one whose settings could not be read (it
// answered system.local, not system_views.settings) what it told last of
// them; the configured timeout stays a floor.
func TestWriteBoundFollowsTheCluster(t *testing.T) {
	told := func(addr string, d time.Duration) Node {
		return Node{Address: addr, HostID: "id-" + addr, Answered: true, WriteRequestTimeout: d}
	}
	silent := func(addr string) Node { return Node{Address: addr, HostID: "id-" + addr} }
	// system.local answered, system_views.settings did not (a timeout).
	unread := func(addr string) Node {
		return Node{Address: addr, HostID: "id-" + addr, Answered: true, Err: errors.New("system_views.settings: timeout")}
	}
	now := time.Unix(1000, 0)
	var cluster []Node
	s := &Store{now: func() time.Time { return now }, bgCtx: t.Context(), writeFloor: 500 * time.Millisecond}
	s.askLimits = func(context.Context) ([]Node, error) { return cluster, nil }
	s.learnRowLimit([]Node{told("a", 500*time.Millisecond)}) // as Open
	steps := []struct {
		name    string
		cluster []Node
		advance time.Duration
		left    time.Duration // before the write's deadline
		sent    bool
	}{
		{"as at Open", []Node{told("a", 500*time.Millisecond)}, 0, 600 * time.Millisecond, true},
		{"node a raised to 2s, within the TTL", []Node{told("a", 2*time.Second)}, rowLimitTTL / 2, 600 * time.Millisecond, true},
		{"node a raised to 2s, after the TTL", nil, rowLimitTTL / 2, 1900 * time.Millisecond, false},
		{"node a at 2s: enough left", nil, 0, 2 * time.Second, true},
		{"node a silent: what it told last", []Node{silent("a"), told("b", time.Second)}, rowLimitTTL, 1900 * time.Millisecond, false},
		{"node a removed", []Node{told("b", time.Second)}, rowLimitTTL, 1100 * time.Millisecond, true},
		{"below the configured floor", []Node{told("b", 100*time.Millisecond)}, rowLimitTTL, 400 * time.Millisecond, false},
		{"node b raised to 3s", []Node{told("b", 3*time.Second)}, rowLimitTTL, 2900 * time.Millisecond, false},
		{"node b answers, its settings do not: what it told last", []Node{unread("b")}, rowLimitTTL, 2900 * time.Millisecond, false},
	}
	for _, st := range steps {
		if st.cluster != nil {
			cluster = st.cluster
		}
		now = now.Add(st.advance)
		s.MutationLimit() // starts a refresh when one is due
		s.bg.Wait()
		ctx, cancel := context.WithDeadline(t.Context(), now.Add(st.left))
		_, done, err := s.sendable(ctx, now)
		done()
		cancel()
		if sent := err == nil; sent != st.sent {
			t.Fatalf("%s: %s left: sent=%v (%v), want %v", st.name, st.left, sent, err, st.sent)
		}
	}
}

// TestWriteRequestTimeoutOfEveryRelease: a node's write_request_timeout
// is read under either name its release gives it in
// system_views.settings: write_request_timeout (4.1 and later, with its
// unit; these also list the old name) and write_request_timeout_in_ms
// (4.0, in milliseconds, the only one it has), whichever row comes first,
// the one with the unit winning. A 4.0 node's was never read: the bound
// of a write stayed Cassandra's default (2s) or the configured one,
// whatever the cluster's, so a 4.0 cluster with write_request_timeout_in_ms
// 5000 could apply writes sent with 2s left up to 3s after their deadline.
func TestWriteRequestTimeoutOfEveryRelease(t *testing.T) {
	t.Parallel()
	if !strings.Contains(settingsStmt, "'write_request_timeout_in_ms'") {
		t.Errorf("the settings read do not ask for write_request_timeout_in_ms: %s", settingsStmt)
	}
	for _, tc := range []struct {
		name string
		rows [][2]string
		want time.Duration
	}{
		{"4.0", [][2]string{{"write_request_timeout_in_ms", "5000"}}, 5 * time.Second},
		{"4.1 and later", [][2]string{{"write_request_timeout", "500ms"}, {"write_request_timeout_in_ms", "500"}}, 500 * time.Millisecond},
		{"4.1 and later, rows the other way", [][2]string{{"write_request_timeout_in_ms", "500"}, {"write_request_timeout", "1500ms"}}, 1500 * time.Millisecond},
		{"the unit's row wins", [][2]string{{"write_request_timeout", "2s"}, {"write_request_timeout_in_ms", "1999"}}, 2 * time.Second},
	} {
		var n Node
		for _, r := range tc.rows {
			nodeSetting(&n, r[0], r[1])
		}
		if n.WriteRequestTimeout != tc.want || n.Err != nil {
			t.Errorf("%s: write_request_timeout %s (%v), want %s", tc.name, n.WriteRequestTimeout, n.Err, tc.want)
		}
	}
	var n Node
	if nodeSetting(&n, "write_request_timeout_in_ms", "soon"); n.Err == nil || n.WriteRequestTimeout != 0 {
		t.Errorf("a timeout that is not one: %s, %v", n.WriteRequestTimeout, n.Err)
	}
}

// TestNoRefreshAfterClose: a refresh of the limits asked by a write that
// ran beside Close (it saw the store open) either ended before Close
// returned or never started: the store's background work ends with Close.
// Before, its Add could run beside Close's Wait (the race detector reports
// the WaitGroup's misuse) and start a refresh after Close returned.
func TestNoRefreshAfterClose(t *testing.T) {
	t.Parallel()
	for range 2000 {
		var stopped atomic.Bool
		late := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(t.Context())
		s := &Store{now: func() time.Time { return time.Unix(0, 0).Add(rowLimitTTL) }, bgCtx: ctx, bgCancel: cancel}
		s.askLimits = func(context.Context) ([]Node, error) {
			if stopped.Load() {
				select {
				case late <- struct{}{}:
				default:
				}
			}
			return nil, errors.New("no nodes")
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for !s.closed.Load() {
					s.writeBound()
					s.limits.mu.Lock()
					s.limits.at = time.Time{} // due again
					s.limits.mu.Unlock()
				}
				s.writeBound()
			})
		}
		runtime.Gosched()
		s.closed.Store(true)
		s.stopBackground()
		stopped.Store(true)
		wg.Wait()
		s.bg.Wait()
		select {
		case <-late:
			t.Fatal("a refresh of the limits started after Close returned")
		default:
		}
	}
}

// TestLimitsAfterAFailedAsk: an ask of the nodes' settings that fails is
// not repeated at every write, only once the TTL passed again; and with no
// node telling its write_request_timeout and none configured, the bound
// of a write is Cassandra's default, never 0 (which would send every
// INSERT, however little time its deadline leaves).
func TestLimitsAfterAFailedAsk(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	asked := 0
	s := &Store{now: func() time.Time { return now }, bgCtx: t.Context()}
	s.askLimits = func(context.Context) ([]Node, error) { asked++; return nil, errors.New("no node answers") }
	s.learnRowLimit([]Node{{Address: "a", HostID: "id-a", Answered: true}}) // as Open: told nothing
	if got := s.writeBound(); got != DefaultWriteRequestTimeout {
		t.Errorf("no node told, none configured: write bound %s, want Cassandra's default %s", got, DefaultWriteRequestTimeout)
	}
	now = now.Add(rowLimitTTL)
	for i := range 3 {
		s.writeBound()
		s.bg.Wait()
		if asked != 1 {
			t.Fatalf("write %d after the TTL, the ask failing: %d asks, want 1 (the next one after the TTL)", i, asked)
		}
	}
	now = now.Add(rowLimitTTL)
	s.writeBound()
	s.bg.Wait()
	if asked != 2 {
		t.Fatalf("the TTL passed again: %d asks, want 2", asked)
	}
}

// TestAfterInsert: an INSERT is tried again only after a refusal that is
// certain by a coordinator that could not serve it, at most writeTries
// times; any other failure is reported as sent, so that Apply says its
// outcome is unknown rather than "not applied" (a timeout, a lost
// connection: a replica may hold the write).
func TestAfterInsert(t *testing.T) {
	t.Parallel()
	unavailable := requestErr{gocql.ErrCodeUnavailable, "Cannot achieve consistency level QUORUM"}
	tests := []struct {
		err   error
		try   int
		want  keyResult
		again bool
	}{
		{nil, 1, keyResult{applied: true, sent: true}, false},
		{unavailable, 1, keyResult{}, true},
		{unavailable, writeTries - 1, keyResult{}, true},
		{unavailable, writeTries, keyResult{sent: true, err: unavailable}, false},
		{requestErr{gocql.ErrCodeBootstrapping, "bootstrapping"}, 1, keyResult{}, true},
		{gocql.ErrNoConnections, 1, keyResult{}, true},
		// not certain: a replica may hold it
		{gocql.ErrTimeoutNoResponse, 1, keyResult{sent: true, err: gocql.ErrTimeoutNoResponse}, false},
		{gocql.ErrConnectionClosed, 1, keyResult{sent: true, err: gocql.ErrConnectionClosed}, false},
		{requestErr{gocql.ErrCodeOverloaded, "overloaded"}, 1, keyResult{sent: true, err: requestErr{gocql.ErrCodeOverloaded, "overloaded"}}, false},
		{requestErr{gocql.ErrCodeWriteTimeout, "timed out"}, 1, keyResult{sent: true, err: requestErr{gocql.ErrCodeWriteTimeout, "timed out"}}, false},
		// certain, but another coordinator would refuse it too
		{requestErr{gocql.ErrCodeInvalid, "Key may not be empty"}, 1, keyResult{sent: true, err: requestErr{gocql.ErrCodeInvalid, "Key may not be empty"}}, false},
	}
	for _, tc := range tests {
		got, again := afterInsert(tc.err, tc.try)
		if got != tc.want || again != tc.again {
			t.Errorf("try %d ended with %v: %+v, again %v; want %+v, again %v", tc.try, tc.err, got, again, tc.want, tc.again)
		}
	}
}

// TestTally: a key whose version read failed sent nothing (its failure is
// certain, whatever it was); one whose INSERT went out and failed other
// than for sure leaves the batch's outcome unknown; the first error of
// each kind is kept.
func TestTally(t *testing.T) {
	t.Parallel()
	timeout := gocql.ErrTimeoutNoResponse
	unavailable := requestErr{gocql.ErrCodeUnavailable, "Cannot achieve consistency level QUORUM"}
	tests := []struct {
		name              string
		res               []keyResult
		written           int
		unknown, definite error
	}{
		{"applied and beaten", []keyResult{{applied: true, sent: true}, {stored: 9}}, 1, nil, nil},
		{"version read timed out", []keyResult{{err: timeout}}, 0, nil, timeout},
		{"insert timed out", []keyResult{{sent: true, err: timeout}}, 0, timeout, nil},
		{"insert refused for sure", []keyResult{{sent: true, err: unavailable}}, 0, nil, unavailable},
		{"first of each", []keyResult{{applied: true, sent: true}, {err: unavailable}, {sent: true, err: timeout}, {err: timeout}, {sent: true, err: gocql.ErrConnectionClosed}},
			1, timeout, unavailable},
	}
	for _, tc := range tests {
		applied, stored, written, unknown, definite := tally(tc.res)
		if written != tc.written || unknown != tc.unknown || definite != tc.definite {
			t.Errorf("%s: written %d, unknown %v, definite %v; want %d, %v, %v", tc.name, written, unknown, definite, tc.written, tc.unknown, tc.definite)
		}
		for j, r := range tc.res {
			if applied[j] != r.applied || stored[j] != r.stored {
				t.Errorf("%s: key %d: applied %v stored %d, want %v %d", tc.name, j, applied[j], stored[j], r.applied, r.stored)
			}
		}
	}
}

// TestGetLevelOutOfRange: a read level outside the ladder, below it as
// above, is an error before any request.
func TestGetLevelOutOfRange(t *testing.T) {
	t.Parallel()
	s := &Store{ladder: []Consistency{gocql.One, gocql.Quorum}, levels: []string{"one", "quorum"}}
	for _, level := range []store.Level{-1, 2} {
		if _, _, err := s.Get(context.Background(), "t", []byte("k"), level); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("level %d: %v, want out of range", level, err)
		}
	}
}
