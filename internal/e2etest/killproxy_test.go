package e2etest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// killWindow is the visibility window of the killed-proxy test's table.
const killWindow = time.Second

// TestKilledProxyWaitingOnLock kills (SIGKILL) a proxy process whose store
// write waits on a row lock that another session holds, and releases the
// lock only once the resolver has given up on the write's intent (its
// visibility window ended). The write must not commit then: the store must
// end with a version that has an event. On the embedded log the proxy is
// `wail serve`, restarted at once (its resolver sees the intent anew); on
// Kafka it is `wail proxy`, with `wail resolve` running apart.
func TestKilledProxyWaitingOnLock(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	bin := buildWail(t)
	for _, db := range sqlDBs() {
		for _, logKind := range []string{"embedded", "kafka"} {
			t.Run(db.name+"/"+logKind, func(t *testing.T) {
				killProxyWaitingOnLock(t, bin, db, logKind)
			})
		}
	}
}

// killSetup is the processes of one killed-proxy run.
type killSetup struct {
	proxy    *child // where writes go; killed
	resolver *child // where the resolver runs (the proxy itself on the embedded log)
	restart  func() // after the kill: what brings a resolver back
	events   func(ctx context.Context, tb catalog.Table) []Event
}

func killProxyWaitingOnLock(t *testing.T, bin string, db sqlDB, logKind string) {
	killProxyWaitingOnLockChurn(t, bin, db, logKind, nil)
}

func killProxyWaitingOnLockChurn(t *testing.T, bin string, db sqlDB, logKind string,
	churn func(t *testing.T, ctx context.Context, brokers []string, group string, d time.Duration)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*caughtUpWait+time.Minute) // two waits, and the rest
	defer cancel()
	dsn := db.dsn(t)
	tbl := sqltest.Name("kp_")
	store := "postgres"
	if db.name == "mariadb" {
		store = "mysql"
	}
	s := startKillSetup(t, bin, logKind, store, dsn, tbl)
	admin := func(c *child) wailv1connect.AdminServiceClient {
		return wailv1connect.NewAdminServiceClient(http.DefaultClient, "http://"+c.addr)
	}
	if _, err := admin(s.proxy).CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: tbl, Partitions: 1, VisibilityWindowMs: killWindow.Milliseconds(),
	})); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, "http://"+s.proxy.addr)
	key := []byte("k")
	first, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: key, Value: []byte("v0")}))
	if err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, ctx, admin(s.resolver), tbl)

	lk := db.locker(t, dsn, tbl)
	if err := lk.Lock(ctx, key); err != nil {
		t.Fatal(err)
	}
	locked := time.Now()
	go func() { // its answer never comes: the process dies
		_, _ = pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: key, Value: []byte("v1")}))
	}()
	for db.waiting(ctx, t, dsn, tbl) == 0 {
		if time.Since(locked) > 10*time.Second {
			t.Fatal("the proxy's write never waited on the row lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.proxy.kill(t)
	t.Logf("proxy killed while its write waited on the lock (%s after the lock was taken)", time.Since(locked).Round(time.Millisecond))
	s.restart()
	if churn != nil {
		churn(t, ctx, kafkaBrokers(t), "wail-resolver."+tbl, 4*time.Second)
	}
	waitCaughtUp(t, ctx, admin(s.resolver), tbl) // the window of the write's intent ended
	time.Sleep(200 * time.Millisecond)
	if err := lk.Release(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lock released %s after it was taken, after the resolver gave up on the write", time.Since(locked).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // a write still queued in the database commits now

	st := db.open(t, dsn)
	row, found, err := st.Get(ctx, tbl, key, 0)
	if err != nil || !found {
		t.Fatalf("read the key back: found=%v, %v", found, err)
	}
	tb := catalog.Table{Name: tbl, Partitions: 1}
	evs := s.events(ctx, tb)
	if len(evs) == 0 {
		t.Fatal("no event at all")
	}
	last := evs[len(evs)-1]
	if last.Version != row.Version {
		t.Fatalf("the store holds version %d (%q), the last event is version %d (%q): a stored version without an event (the first write was version %d)",
			row.Version, row.Value, last.Version, last.Value, first.Msg.Result.Version)
	}
	t.Logf("the store kept version %d (%q), which has its event", row.Version, row.Value)
}

func startKillSetup(t *testing.T, bin, logKind, store, dsn, tbl string) *killSetup {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "wail.yaml")
	yaml := fmt.Sprintf("catalog_refresh: 100ms\nresolver:\n  group: wail-resolver.%s\n  commit_interval: 50ms\n", tbl)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", cfgFile, "--store", store, "--dsn", dsn}
	s := &killSetup{}
	if logKind == "embedded" {
		dir := t.TempDir()
		serve := func() *child { return startWail(t, bin, append([]string{"serve", "--data-dir", dir}, common...)...) }
		s.proxy = serve()
		s.resolver = s.proxy
		s.restart = func() { s.resolver = serve() }
		s.events = func(ctx context.Context, tb catalog.Table) []Event {
			s.resolver.terminate(t)
			log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			return readEvents(t, ctx, log, tb)
		}
		return s
	}
	brokers := kafkaBrokers(t)
	common = append(common, "--log", "kafka", "--brokers", strings.Join(brokers, ","))
	s.resolver = startWail(t, bin, append([]string{"resolve", "--data-dir", t.TempDir(), "--resolver-id", "a"}, common...)...)
	s.proxy = startWail(t, bin, append([]string{"proxy", "--data-dir", t.TempDir(), "--proxy-id", "1"}, common...)...)
	s.restart = func() {}
	s.events = func(ctx context.Context, tb catalog.Table) []Event {
		log, err := kafka.Open(ctx, kafka.Options{Brokers: brokers})
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		return readEvents(t, ctx, log, tb)
	}
	return s
}

// caughtUpWait bounds waitCaughtUp. Catching up takes the intent's
// visibility window and its recheck (2 s here) once the resolver runs the
// partition; but a resolver whose group membership the coordinator dropped
// (on a starved machine: no heartbeat for the 10 s session timeout) learns
// so at its next heartbeat, joins again after a backoff, and its new loop
// starts the window and the recheck over from the last committed offset
// (TestKilledProxyResolverKicked). On a loaded 2-core CI machine one such
// churn took the test past an earlier 30 s bound with the resolver
// otherwise fine. A partition that never moves again still fails here.
const caughtUpWait = 90 * time.Second

// waitCaughtUp waits until the resolver's committed offsets of table reach
// the end of its intent log, as a process's DescribeTable reports them (a
// process that does not know the table yet answers not_found), for at most
// caughtUpWait. It logs a wait over 10 s, and says on failure how long the
// offsets stood still.
func waitCaughtUp(t *testing.T, ctx context.Context, admin wailv1connect.AdminServiceClient, table string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(caughtUpWait)
	last, moved := "", start // the last state seen, and when it changed
	for {
		d, err := admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: table}))
		behind := ""
		if err == nil && len(d.Msg.IntentEndOffsets) == 0 {
			// The process does not resolve the table yet (it has not seen
			// it in the catalog): no offsets, which is not caught up.
			behind = " not resolving the table yet"
		} else if err == nil {
			for p, end := range d.Msg.IntentEndOffsets {
				if c := d.Msg.CommittedOffsets[p]; c < end {
					behind += fmt.Sprintf(" p%d:%d/%d", p, c, end)
				}
			}
		} else if connect.CodeOf(err) != connect.CodeNotFound && connect.CodeOf(err) != connect.CodeUnavailable {
			t.Fatal(err)
		} else {
			behind = " " + err.Error()
		}
		if behind != last {
			last, moved = behind, time.Now()
		}
		if behind == "" {
			if took := time.Since(start); took > 10*time.Second {
				t.Logf("the resolver caught up after %s (a loaded machine, or its group membership churned)", took.Round(time.Millisecond))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolver did not catch up in %s:%s (unchanged for the last %s)",
				caughtUpWait, behind, time.Since(moved).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
