package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/cassandra"
	"github.com/wail-cdc/wail/internal/store/mysql"
	"github.com/wail-cdc/wail/internal/store/postgres"
)

// DefaultDoctorTimeout bounds each check that talks to a store, a log or
// a server when Doctor is given no bound (each check its own: bounded).
const DefaultDoctorTimeout = 10 * time.Second

// Doctor checks what a configuration needs, prints one line per check to w
// and returns an error naming the failed checks. With addr set (a server's
// base URL), it first prints the health of the server answering there (see
// DoctorHealth, within timeout); an unhealthy server fails the check, as
// one whose health cannot be read does; nothing listening at addr does not. Then: TLS and auth (an exposed API that would be
// refused, the certificate and how long it lasts, the tokens file); the
// store is reachable, its schema (the catalog) is in place (doctor
// creates none: doctorOpen), how far each
// replica lags, and (Cassandra) every node answers and every wail table
// keeps read_repair = 'BLOCKING'; the log (the Kafka brokers, or the
// embedded log in the data dir) is reachable, every ready table has its
// intent and event topics with its partition count, and (Kafka) each
// event topic keeps its records at least as long as its intent topic. The embedded store
// and log that the server at addr holds are skipped. hc (nil:
// http.DefaultClient) carries the client's TLS settings; timeout (0:
// DefaultDoctorTimeout) bounds each check on its own (bounded).
func Doctor(ctx context.Context, cfg config.Config, hc *http.Client, addr string, timeout time.Duration, w io.Writer) error {
	if timeout <= 0 {
		timeout = DefaultDoctorTimeout
	}
	fmt.Fprintf(w, "config       ok (store %s, log %s, data dir %s)\n", cfg.Store.Kind, cfg.Log.Kind, cfg.DataDir)
	var failed []string
	fail := func(check, format string, args ...any) {
		fmt.Fprintf(w, "%-12s FAIL: %s\n", check, fmt.Sprintf(format, args...))
		failed = append(failed, check)
	}
	doctorSecurity(cfg, w, fail) // security.go
	answered := false
	if addr != "" {
		rep, err := DoctorHealth(ctx, hc, addr, timeout, w)
		answered = err == nil
		if answered && rep.State == health.Unhealthy {
			failed = append(failed, "server")
		}
	}
	// The embedded store and log live in the data dir: one that does not
	// exist (a typo) would be made empty by opening them, and said to hold
	// no table.
	embeddedStore, embeddedLog := cfg.Store.Kind == config.StorePebble, cfg.Log.Kind == config.LogEmbedded
	noDir := false
	if embeddedStore || embeddedLog {
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
			noDir = true
			fail("data dir", "%s does not exist (check --data-dir / data_dir; wail serve makes it at its first start): the embedded store and log were not checked", cfg.DataDir)
		}
	}
	var tables []catalog.Table
	inUse := false
	if !noDir || !embeddedStore {
		tables, inUse = doctorStore(ctx, cfg, timeout, w, fail, answered)
	}
	if inUse {
		fmt.Fprintf(w, "store        skipped: the embedded store is in use (by the server at %s?), whose health is above\n", addr)
	}
	switch {
	case inUse && embeddedLog:
		fmt.Fprintf(w, "log          skipped: the embedded log is in use too\n")
	case !noDir || !embeddedLog:
		doctorLog(ctx, cfg, timeout, w, tables, fail)
	}
	doctorRegistry(ctx, cfg, timeout, w, tables, fail) // schema_registry.go
	if len(failed) > 0 {
		return fmt.Errorf("doctor: failed checks: %v", failed)
	}
	return nil
}

// The store capabilities doctorStore checks when a store has them.
type (
	// schemaChecker checks the store's schema against this wail's (the
	// SQL stores, Cassandra).
	schemaChecker interface {
		Check(ctx context.Context) error
	}
	// replicaLagger measures how far each read replica is behind
	// (PostgreSQL).
	replicaLagger interface {
		ReplicaLag(ctx context.Context) ([]time.Duration, error)
	}
)

// The stores that have them: a rename fails the build, not the check.
var (
	_ schemaChecker = (*postgres.Store)(nil)
	_ schemaChecker = (*mysql.Store)(nil)
	_ schemaChecker = (*cassandra.Store)(nil)
	_ replicaLagger = (*postgres.Store)(nil)
	_ clusterStore  = (*cassandra.Store)(nil)
	_ tableOptioner = (*cassandra.Store)(nil)
)

// doctorStore checks the store and returns the tables of its catalog;
// inUse says that the embedded store is locked by a server that answered.
func doctorStore(ctx context.Context, cfg config.Config, timeout time.Duration, w io.Writer, fail func(check, format string, args ...any), answered bool) (tables []catalog.Table, inUse bool) {
	var st store.Store
	err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
		st, err = doctorOpen(ctx, cfg)
		return err
	})
	switch {
	case err != nil && answered && cfg.Store.Kind == config.StorePebble:
		return nil, true
	case err != nil:
		fail("store", "%v", err)
		return nil, false
	}
	defer st.Close()
	fmt.Fprintf(w, "store        ok (read levels %v)\n", st.Levels())
	return doctorStoreChecks(ctx, st, timeout, w, fail), false
}

// bounded runs one check with a deadline of its own, timeout from now:
// a check does not run out of time because the ones before it were slow
// (one deadline for every check failed a store that answered each one,
// on a loaded machine). An error past that deadline says what to do.
func bounded(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := check(cctx)
	if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return fmt.Errorf("%w (no answer within --timeout %s: on a loaded machine, store or log, raise --timeout)", err, timeout)
	}
	return err
}

// doctorStoreChecks runs the checks of an open store, each bounded by
// timeout, and returns the tables of its catalog.
func doctorStoreChecks(ctx context.Context, st store.Store, timeout time.Duration, w io.Writer, fail func(check, format string, args ...any)) (tables []catalog.Table) {
	if c, ok := st.(schemaChecker); ok {
		if err := bounded(ctx, timeout, c.Check); err != nil {
			fail("schema", "%v", err)
		}
	}
	var rows []store.Table
	if err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
		rows, err = st.Tables(ctx)
		return err
	}); err != nil {
		fail("catalog", "%v", err)
	} else {
		var damaged []error
		tables, damaged = decodeTables(rows)
		if len(damaged) == 0 {
			fmt.Fprintf(w, "catalog      ok (%d tables)\n", len(rows))
		} else {
			fail("catalog", "%v", errors.Join(damaged...))
		}
	}
	if c, ok := st.(clusterStore); ok {
		if err := bounded(ctx, timeout, func(ctx context.Context) error { return doctorCluster(ctx, c, w) }); err != nil {
			fail("nodes", "%v", err)
		}
	}
	if t, ok := st.(tableOptioner); ok {
		if err := bounded(ctx, timeout, func(ctx context.Context) error { return doctorReadRepair(ctx, t, w) }); err != nil {
			fail("read_repair", "%v", err)
		}
	}
	if r, ok := st.(replicaLagger); ok {
		var lags []time.Duration
		err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
			lags, err = r.ReplicaLag(ctx)
			return err
		})
		switch {
		case err != nil:
			fail("replicas", "%v", err)
		case len(lags) == 0:
			fmt.Fprintf(w, "replicas     none configured\n")
		default:
			for i, l := range lags {
				fmt.Fprintf(w, "replica %-4d ok (lag %s)\n", i, l.Round(time.Millisecond))
			}
		}
	}
	return tables
}

// doctorOpen opens the store to check it: as wail serve does, except that
// a PostgreSQL, MySQL or Cassandra store creates nothing (a keyspace, a
// schema or a database wail never ran on, from a typo in the DSN or
// store.cassandra.keyspace, fails the check rather than being set up).
func doctorOpen(ctx context.Context, cfg config.Config) (store.Store, error) {
	return openStore(ctx, cfg, slog.New(slog.DiscardHandler), seams{existing: true})
}

func decodeTables(rows []store.Table) (out []catalog.Table, damaged []error) {
	for _, r := range rows {
		if !store.IsTableEntry(r.Name) {
			continue
		}
		t, err := catalog.Decode(r.Spec)
		if err == nil && t.Name != r.Name {
			err = fmt.Errorf("it names table %q", t.Name)
		}
		if err != nil {
			// What the server says of it too (catalog/<table> on /healthz).
			damaged = append(damaged, fmt.Errorf("the catalog entry of table %s cannot be read (%w): the table is not served; "+
				"remove it, with its rows and topics, with `wail table drop %s --force`, or restore the entry", r.Name, err, r.Name))
			continue
		}
		out = append(out, t)
	}
	return out, damaged
}

// doctorLog checks the log and the topics of the ready tables.
func doctorLog(ctx context.Context, cfg config.Config, timeout time.Duration, w io.Writer, tables []catalog.Table, fail func(check, format string, args ...any)) {
	var log intentlog.Log
	err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
		log, err = OpenLog(ctx, cfg, slog.New(slog.DiscardHandler))
		return err
	})
	if err != nil {
		fail("log", "%v", err)
		return
	}
	defer log.Close()
	where := "embedded"
	if cfg.Log.Kind == config.LogKafka {
		where = fmt.Sprintf("kafka %v", cfg.Log.Kafka.Brokers)
	}
	fmt.Fprintf(w, "log          ok (%s)\n", where)
	doctorLogChecks(ctx, log, cfg.Log.Kafka.Brokers, timeout, w, tables, fail)
}

// doctorLogChecks checks the topics of the ready tables on an open log,
// each topic's check bounded by timeout.
func doctorLogChecks(ctx context.Context, log intentlog.Log, brokers []string, timeout time.Duration, w io.Writer, tables []catalog.Table, fail func(check, format string, args ...any)) {
	var problems []error
	n, served := 0, 0
	for _, t := range tables {
		if t.State != catalog.Ready && t.State != catalog.Dropping {
			continue
		}
		served++
		for _, topic := range tableTopics(t.Name) {
			n++
			want := t.Partitions
			if topic == dlq.Topic(t.Name) {
				want = dlq.Partitions
			}
			var got int32
			err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
				got, err = log.Partitions(ctx, topic)
				return err
			})
			switch {
			case errors.Is(err, intentlog.ErrUnknownTopic):
				problems = append(problems, fmt.Errorf("%s of table %s is missing: a wail process makes it when it starts or "+
					"refreshes its catalog; if it does not, check its log (permissions on the broker, disk)", topic, t.Name))
			case err != nil:
				problems = append(problems, fmt.Errorf("%s of table %s: %w", topic, t.Name, err))
			case got != want:
				problems = append(problems, fmt.Errorf("%s has %d partitions, table %s needs %d: the table is not served; "+
					"drop the table (wail table drop %s --force) or the topic", topic, got, t.Name, want, t.Name))
			}
		}
	}
	if len(problems) > 0 {
		fail("topics", "%v", errors.Join(problems...))
		return
	}
	fmt.Fprintf(w, "topics       ok (%d topics of %d tables)\n", n, served)
	if r, ok := log.(retentionReader); ok {
		doctorRetention(ctx, r, brokers, timeout, tables, w, fail)
	}
}

// doctorRetention checks that every served table's event topic keeps its
// records at least as long as its intent topic (Kafka: topics keep the
// configs they were created with, or were given outside wail); each
// table's check is bounded by timeout.
func doctorRetention(ctx context.Context, r retentionReader, brokers []string, timeout time.Duration, tables []catalog.Table, w io.Writer, fail func(check, format string, args ...any)) {
	var problems []string
	for _, t := range tables {
		if t.State != catalog.Ready && t.State != catalog.Dropping {
			continue
		}
		var problem, action string
		err := bounded(ctx, timeout, func(ctx context.Context) (err error) {
			problem, action, err = retentionProblem(ctx, r, t.Name, brokers)
			return err
		})
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("table %s: %v (grant DescribeConfigs on its topics)", t.Name, err))
		case problem != "":
			problems = append(problems, problem+"; "+action)
		}
	}
	if len(problems) > 0 {
		fail("retention", "%s", strings.Join(problems, "\n"))
		return
	}
	fmt.Fprintf(w, "retention    ok (every event topic keeps its records at least as long as its intent topic, and no intent topic is compacted)\n")
}

// DoctorHealth asks the server at addr (a base URL) for its /healthz,
// within timeout, and prints its state and conditions (reason and action)
// to w. It returns an error, after printing that no server answered, when
// nothing listens at addr (the connection was not made). A server that
// answers but whose health cannot be read (a TLS handshake that fails, a
// TLS server asked in plain http or the reverse, no answer within timeout,
// an answer that is no health report) is printed as a failure, with what
// to do, and reported unhealthy.
func DoctorHealth(ctx context.Context, hc *http.Client, addr string, timeout time.Duration, w io.Writer) (health.Report, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	var rep health.Report
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/healthz?format=json", nil)
	if err != nil {
		return rep, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		if notListening(err) {
			fmt.Fprintf(w, "server       none answers at %s (health not checked)\n", addr)
			return rep, err
		}
		fmt.Fprintf(w, "server       FAIL: %s: %s\n", addr, healthError(err, timeout))
		rep.State = health.Unhealthy
		return rep, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(body, &rep); err != nil {
		hint := ""
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(body), "HTTPS server") {
			hint = " (the server speaks TLS: give the CA that signed its certificate, --ca / WAIL_CA, or an https:// address)"
		}
		fmt.Fprintf(w, "server       FAIL: %s/healthz answered %s, not a health report: %v%s\n", addr, resp.Status, err, hint)
		rep.State = health.Unhealthy
		return rep, nil
	}
	fmt.Fprintf(w, "server       %s at %s\n", rep.State, addr)
	if rep.Hidden != "" {
		fmt.Fprintf(w, "  %s\n", rep.Hidden)
	}
	for _, c := range rep.Conditions {
		fmt.Fprintf(w, "  %s %s: %s", c.State, c.Component, c.Reason)
		if c.Action != "" {
			fmt.Fprintf(w, " (%s)", c.Action)
		}
		fmt.Fprintf(w, " since %s\n", c.Since.UTC().Format(time.RFC3339))
	}
	return rep, nil
}

// notListening reports whether err is a connection that could not be made
// (refused, no route, a name that does not resolve): no server at the
// address.
func notListening(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// healthError is why a server's health could not be read, and what to do.
func healthError(err error, timeout time.Duration) string {
	var (
		verify *tls.CertificateVerificationError
		unk    x509.UnknownAuthorityError
		host   x509.HostnameError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("it took the request and did not answer within %s (hung, or loaded: raise --timeout)", timeout)
	case errors.As(err, &verify) || errors.As(err, &unk) || errors.As(err, &host):
		return fmt.Sprintf("%v (give the CA that signed its certificate: --ca / WAIL_CA; the address must be a name or IP address the certificate holds)", err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("%v (it serves plain http: leave out --ca, --cert and --key, or use an http:// address)", err)
	}
	return err.Error()
}
