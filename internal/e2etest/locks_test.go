package e2etest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// sqlDB is a SQL database under test: how to open wail's store on it, and
// how another application's session holds a row lock there.
type sqlDB struct {
	name string
	// dsn returns the DSN of a fresh schema or database.
	dsn  func(t *testing.T) string
	open func(t *testing.T, dsn string) store.Store
	// locker opens a session of its own on dsn.
	locker func(t testing.TB, dsn, table string) sqltest.RowLocker
	// waiting counts the sessions whose statement on table waits for a
	// row lock.
	waiting func(ctx context.Context, t *testing.T, dsn, table string) int
}

func sqlDBs() []sqlDB {
	return []sqlDB{
		{
			name: "postgres",
			dsn: func(t *testing.T) string {
				dsn, _ := freshSchema(t, sqltest.Postgres(t), "")
				return dsn
			},
			open: func(t *testing.T, dsn string) store.Store {
				st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 8, QueryTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			},
			locker: sqltest.PostgresLocker,
			waiting: func(ctx context.Context, t *testing.T, dsn, table string) int {
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var n int
				err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
 WHERE wait_event_type = 'Lock' AND application_name = 'wail' AND query LIKE '%' || $1 || '%'`,
					sqlstore.TableName(table, 63)).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n
			},
		},
		{
			name: "mariadb",
			dsn: func(t *testing.T) string {
				return sqltest.MySQLDatabase(t, sqltest.MySQL(t))
			},
			open: func(t *testing.T, dsn string) store.Store {
				st, err := mysql.Open(context.Background(), mysql.Options{DSN: dsn, MaxConns: 8, QueryTimeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			},
			locker: sqltest.MySQLLocker,
			waiting: func(ctx context.Context, t *testing.T, dsn, table string) int {
				db, err := sql.Open("mysql", dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				var n int
				// The INSERT on the locked row is in flight (INNODB_TRX,
				// which would say LOCK WAIT, needs the PROCESS privilege).
				err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
 WHERE ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%INSERT INTO `+"`"+`', ?, '%')`, sqlstore.TableName(table, 64)).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n
			},
		},
	}
}

// TestLockSweep holds a row lock from another session while the proxy
// writes the row, releasing it at times swept across the moment the proxy
// gives up on the store write (from 50 ms before to 50 ms after, in 5 ms
// steps), with the resolver running. Whatever the proxy answered, every
// version the store ends up with must have an event, and no event may carry
// a version the store never held. WAIL_TEST_LOCK_SWEEP_TRIALS (default 3)
// sets the trials per step.
//
// In "bound" the database's own timeout ends the write first (the usual
// case: a definite failure, an ABORT). In "client-first" the client side
// gives up 60 ms before the deadline the database was given (a slow
// answer, a client's deadline): the outcome is unknown, no ABORT is
// logged, and a lock released in between lets the write commit after the
// proxy answered; the resolver must still publish it.
func TestLockSweep(t *testing.T) {
	trials := 3
	if s := os.Getenv("WAIL_TEST_LOCK_SWEEP_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("WAIL_TEST_LOCK_SWEEP_TRIALS=%q: want a positive number", s)
		}
		trials = n
	}
	for _, db := range sqlDBs() {
		for _, lead := range []time.Duration{0, 60 * time.Millisecond} {
			name := db.name + "/bound"
			if lead > 0 {
				name = db.name + "/client-first"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				lockSweep(t, db, trials, lead)
			})
		}
	}
}

// hastyStore gives up on a write lead before the deadline it tells the
// store: the store bounds the write in the database by that deadline,
// while the client side is cancelled earlier.
type hastyStore struct {
	store.Store
	lead time.Duration
}

func (h hastyStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	deadline, ok := ctx.Deadline()
	if !ok || h.lead == 0 {
		return h.Store.Apply(ctx, table, muts)
	}
	early, cancel := context.WithDeadline(ctx, deadline.Add(-h.lead))
	defer cancel()
	return h.Store.Apply(hastyCtx{early, deadline}, table, muts)
}

// hastyCtx ends before the deadline it reports.
type hastyCtx struct {
	context.Context
	deadline time.Time
}

func (c hastyCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// sweepWindow is the table's visibility window in the sweep: short, so
// that a trial takes a fraction of a second.
const sweepWindow = 400 * time.Millisecond

// trialOutcome is what one write under a held lock did.
type trialOutcome struct {
	hold     time.Duration // how long the lock was held after the write began
	answered time.Duration // when the proxy answered
	w        Write
	err      error
}

func lockSweep(t *testing.T, db sqlDB, trials int, lead time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := db.dsn(t)
	st := db.open(t, dsn)
	b := Backends{Log: openLog(t), Store: st}
	flaky := &flakyStore{Store: hastyStore{st, lead}, stored: map[string]map[uint64]storedRow{}, maybe: map[string]map[uint64]storedRow{}}
	bus := eventbus.New(b.Log)
	cat := openCatalog(ctx, t, b, bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: sweepWindow, Partitions: 4})
	tb, _, err := cat.Create(ctx, catalog.Table{Name: "sweep"})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(5, nil)
	px := proxy.New(b.Log, flaky, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
	res := startResolver(ctx, b, bus, tb, "first")
	defer func() {
		if res != nil {
			res.stop(t)
		}
	}()

	var (
		mu     sync.Mutex
		writes []Write
	)
	write := func(key, value string) (Write, error) {
		r := px.Write(ctx, []proxy.Mutation{{Table: tb.Name, Key: []byte(key), Value: []byte(value)}})[0]
		w := Write{Key: key, Version: r.Version, Value: value, Acked: r.Err == nil && r.IntentLogged}
		mu.Lock()
		writes = append(writes, w)
		mu.Unlock()
		return w, r.Err
	}
	// trial writes key once freely, then again while a lock on its row is
	// held for hold after the write began.
	trial := func(lk sqltest.RowLocker, key string, hold time.Duration) trialOutcome {
		// The row must exist first. On a loaded machine a free write can
		// miss the short window too: that is not what the trial measures,
		// so it is tried again (each failure is in the history Check reads).
		for attempt := 1; ; attempt++ {
			w, err := write(key, key+"#0")
			if err == nil && w.Acked {
				break
			}
			if attempt == 20 {
				t.Fatalf("first write of %s failed %d times, the last: %+v, %v", key, attempt, w, err)
			}
		}
		if err := lk.Lock(ctx, []byte(key)); err != nil {
			t.Fatalf("lock %s: %v", key, err)
		}
		start := time.Now()
		done := make(chan trialOutcome, 1)
		go func() {
			w, err := write(key, key+"#1")
			done <- trialOutcome{hold: hold, answered: time.Since(start), w: w, err: err}
		}()
		time.Sleep(time.Until(start.Add(hold)))
		if err := lk.Release(); err != nil {
			t.Fatalf("release %s: %v", key, err)
		}
		return <-done
	}

	// Calibrate: when does the proxy answer a write whose row stays locked?
	calib := trial(db.locker(t, dsn, tb.Name), "calibrate", 4*sweepWindow)
	if calib.err == nil {
		t.Fatalf("a write whose row was locked for %s succeeded", 4*sweepWindow)
	}
	center := calib.answered
	t.Logf("a write blocked by a row lock is answered after %s: %v", center.Round(time.Millisecond), calib.err)

	var holds []time.Duration
	for d := -50 * time.Millisecond; d <= 50*time.Millisecond; d += 5 * time.Millisecond {
		for range trials {
			holds = append(holds, center+d)
		}
	}
	const workers = 4
	outcomes := make([]trialOutcome, len(holds))
	var wg sync.WaitGroup
	for w := range workers {
		lk := db.locker(t, dsn, tb.Name)
		wg.Go(func() {
			for i := w; i < len(holds); i += workers {
				outcomes[i] = trial(lk, fmt.Sprintf("k-%d", i), holds[i])
			}
		})
	}
	wg.Wait()
	waitResolved(t, ctx, b.Log, groupOf(tb.Name), tb)
	res.stop(t)
	res = nil

	events := readEvents(t, ctx, b.Log, tb)
	keys := flaky.keys()
	final := finalState(t, ctx, st, tb.Name, keys)
	reportSweep(t, outcomes, final)
	Check(t, writes, events, flaky.check, final, nil)
}

// reportSweep logs, per 10 ms of hold time relative to the mean answer,
// how the writes ended: stored and acknowledged; failed, said not applied
// (an ABORT followed) or of unknown outcome; and failed although the
// store holds the write (only the resolver's window can save those).
func reportSweep(t *testing.T, outs []trialOutcome, final map[string]store.Row) {
	t.Helper()
	type tally struct{ acked, notApplied, unknown, failedStored int }
	byStep := map[time.Duration]*tally{}
	var sum time.Duration
	for _, o := range outs {
		sum += o.answered
	}
	mean := sum / time.Duration(len(outs))
	for _, o := range outs {
		step := (o.hold - mean).Truncate(10 * time.Millisecond)
		if byStep[step] == nil {
			byStep[step] = &tally{}
		}
		tl := byStep[step]
		switch {
		case o.err == nil:
			tl.acked++
		case final[o.w.Key].Version == o.w.Version:
			tl.failedStored++
		case strings.Contains(o.err.Error(), "outcome is unknown"):
			tl.unknown++
		default:
			tl.notApplied++
		}
	}
	steps := make([]time.Duration, 0, len(byStep))
	for s := range byStep {
		steps = append(steps, s)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	var lines []string
	for _, s := range steps {
		tl := byStep[s]
		lines = append(lines, fmt.Sprintf("  release at answer%+4dms: %3d acknowledged, %3d not applied, %3d unknown and not stored, %3d failed but stored",
			s.Milliseconds(), tl.acked, tl.notApplied, tl.unknown, tl.failedStored))
	}
	t.Logf("%d trials, mean answer after %s:\n%s", len(outs), mean.Round(time.Millisecond), strings.Join(lines, "\n"))
}
