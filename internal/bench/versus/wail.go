package versus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// wailPipe is a `wail serve --store postgres --log kafka` process and its
// API.
type wailPipe struct {
	o        *Options
	table    string
	dir      string
	proc     *child
	producer wailv1connect.ProducerServiceClient
	pool     *pgxpool.Pool // cleanup only
	topics   *topicAdmin
	args     []string
	base     string // http://addr
}

// startWail starts wail serve, waits for /healthz and creates the table.
func startWail(ctx context.Context, o *Options, table string, pool *pgxpool.Pool, topics *topicAdmin) (*wailPipe, error) {
	dir, err := os.MkdirTemp("", "wail-vs-*")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	w := &wailPipe{o: o, table: table, dir: dir, pool: pool, topics: topics}
	w.args = []string{"serve", "--store", "postgres", "--dsn", o.DSN, "--log", "kafka", "--brokers", o.Brokers,
		"--data-dir", filepath.Join(dir, "data"), "--listen", addr}
	for _, r := range o.WailReplicaDSNs {
		w.args = append(w.args, "--replica-dsn", r)
	}
	w.proc, err = startChild(filepath.Join(dir, "wail.log"), nil, o.WailBin, w.args...)
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	w.base = base
	noGzip := connect.WithAcceptCompression("gzip", nil, nil)
	writers, err := client.Dial(client.Options{Addr: base, MaxConns: o.Load.Concurrency, DisableCompression: true,
		ConnectOptions: []connect.ClientOption{noGzip}})
	if err != nil {
		_ = w.Close(ctx)
		return nil, err
	}
	w.producer = writers.Producer
	admin := writers.Admin
	if err := w.awaitHealthy(ctx, base, 60*time.Second); err != nil {
		_ = w.Close(ctx)
		return nil, err
	}
	_, err = admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{
		Name: table, FailureMode: wailv1.FailureMode_FAILURE_MODE_TRANSACTIONAL, Partitions: o.Partitions}))
	if err != nil {
		_ = w.Close(ctx)
		return nil, fmt.Errorf("wail: create table %s: %w", table, err)
	}
	return w, nil
}

func (w *wailPipe) awaitHealthy(ctx context.Context, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if done, err := w.proc.exited(); done {
			return fmt.Errorf("wail serve exited while starting (%v); log: %s", err, filepath.Join(w.dir, "wail.log"))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("wail serve not healthy after %s; log: %s", limit, filepath.Join(w.dir, "wail.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Counters reads wail's /metrics (counterSource).
func (w *wailPipe) Counters(ctx context.Context) (map[string]float64, error) {
	return scrapeCounters(ctx, w.base+"/metrics")
}

func (w *wailPipe) Name() string    { return "wail" }
func (w *wailPipe) Topic() string   { return eventbus.Topic(w.table) }
func (w *wailPipe) Decode() Decoder { return DecodeWail }
func (w *wailPipe) PID() int        { return w.proc.pid() }

func (w *wailPipe) Settings() map[string]string {
	return map[string]string{
		"command":   fmt.Sprintf("%s %v", w.o.WailBin, w.args),
		"config":    "wail's defaults (resolver concurrency 16, store max_conns 16, first_read_delay 2ms but none for its own writes to the primary alone, commit_interval 200ms)",
		"table":     fmt.Sprintf("%s, transactional, %d partitions; SQL table %s", w.table, w.o.Partitions, sqlstore.TableName(w.table, 63)),
		"event bus": eventbus.Topic(w.table) + " (compacted)",
	}
}

// Write sends the batch through the proxy's Write.
func (w *wailPipe) Write(ctx context.Context, muts []*wailv1.Mutation) ([]ack, error) {
	resp, err := w.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	if err != nil {
		return nil, err
	}
	res := resp.Msg.GetResults()
	if len(res) != len(muts) {
		return nil, fmt.Errorf("wail: %d results for %d mutations", len(res), len(muts))
	}
	out := make([]ack, len(muts))
	for i, r := range res {
		switch {
		case r.GetError() != nil:
			out[i].err = r.GetError().GetCode()
		case !r.GetIntentLogged():
			out[i].err = "intent_not_logged"
		default:
			out[i].token = r.GetVersion()
		}
	}
	return out, nil
}

// Close stops wail serve and removes its table (SQL table and catalog row)
// and topics.
func (w *wailPipe) Close(ctx context.Context) error {
	var errs []error
	if err := w.proc.stop(40 * time.Second); err != nil {
		errs = append(errs, fmt.Errorf("wail serve: %w", err))
	}
	sqlTable := sqlstore.TableName(w.table, 63)
	if _, err := w.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{sqlTable}.Sanitize()); err != nil {
		errs = append(errs, err)
	}
	if _, err := w.pool.Exec(ctx, "DELETE FROM wail__catalog WHERE name = $1", w.table); err != nil {
		errs = append(errs, err)
	}
	if err := w.topics.delete(ctx, intent.Topic(w.table), eventbus.Topic(w.table)); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		_ = os.RemoveAll(w.dir)
	}
	return errors.Join(errs...)
}
