package versus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// dbzPipe is Debezium Server (started through bench/debezium/run.sh server)
// on a bench table that the load writes directly.
type dbzPipe struct {
	o      *Options
	table  string // the PostgreSQL table, also the slot and publication suffix
	slot   string
	prefix string
	dir    string
	proc   *child
	pool   *pgxpool.Pool // the load's writers
	admin  *pgxpool.Pool // setup and cleanup
	topics *topicAdmin
	env    []string
}

// The settings the bench passes to bench/debezium/run.sh: Debezium's and the
// Kafka client's own defaults, but for one documented tuning,
// poll.interval.ms (10 ms instead of 500). Measured on this machine
// (docs/benchmarks.md): at the defaults Debezium's p50 is 0.8 s at 500
// writes/s; with 10 ms it is 73 ms at 1000/s. The whole documented set
// (also max.batch.size 8192, max.queue.size 32768, producer linger.ms 5,
// batch.size 256 KiB) cut it to about 100 events/s: its sink waits for
// every batch's acknowledgement. Each can be overridden by its DBZ_*
// environment variable.
var dbzTuning = []struct{ env, prop, value, why string }{
	{"DBZ_MAX_BATCH", "max.batch.size", "2048", "events per batch handed to the sink (default)"},
	{"DBZ_MAX_QUEUE", "max.queue.size", "8192", "events queued between the WAL reader and the sink (default)"},
	{"DBZ_POLL_MS", "poll.interval.ms", "10", "documented tuning: wait for new events when the queue is empty (default 500 ms)"},
	{"DBZ_LINGER_MS", "sink.kafka.producer.linger.ms", "0", "producer batching delay (Kafka 3.7 client default)"},
	{"DBZ_BATCH_BYTES", "sink.kafka.producer.batch.size", "16384", "producer batch bytes per partition (client default)"},
}

// dbzSetting is the value of a tunable: $env when set (to try other
// settings without editing code), else def.
func dbzSetting(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// startDebezium creates the table, publication and topic, starts Debezium
// Server and waits until its slot streams.
func startDebezium(ctx context.Context, o *Options, table string, admin *pgxpool.Pool, topics *topicAdmin) (*dbzPipe, error) {
	d := &dbzPipe{o: o, table: table, slot: "wail_" + table, prefix: "wailvs", admin: admin, topics: topics}
	dir, err := os.MkdirTemp("", "wail-vs-dbz-*")
	if err != nil {
		return nil, err
	}
	d.dir = dir
	ident := pgx.Identifier{table}.Sanitize()
	for _, q := range []string{
		`CREATE TABLE ` + ident + ` (k text COLLATE "C" PRIMARY KEY, v bytea NOT NULL)`,
		`GRANT SELECT ON ` + ident + ` TO ` + pgx.Identifier{o.DebeziumUser}.Sanitize(),
		`CREATE PUBLICATION ` + pgx.Identifier{d.slot}.Sanitize() + ` FOR TABLE ` + ident,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			_ = d.Close(ctx)
			return nil, fmt.Errorf("debezium setup: %s: %w", q, err)
		}
	}
	if err := topics.create(ctx, d.Topic(), o.Partitions); err != nil {
		_ = d.Close(ctx)
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = int32(o.PGConns)
	if d.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, err
	}
	cc := pcfg.ConnConfig
	d.env = []string{
		"DBZ_TABLE=" + table, "DBZ_SLOT=" + d.slot, "DBZ_PREFIX=" + d.prefix, "DBZ_BROKERS=" + o.Brokers,
		"DBZ_PG_HOST=" + cc.Host, "DBZ_PG_PORT=" + strconv.Itoa(int(cc.Port)), "DBZ_PG_DB=" + cc.Database,
		"DBZ_PG_USER=" + o.DebeziumUser, "DBZ_PG_PASSWORD=" + o.DebeziumPassword,
	}
	for _, t := range dbzTuning {
		d.env = append(d.env, t.env+"="+dbzSetting(t.env, t.value))
	}
	args := strings.Fields(o.DebeziumCmd)
	if len(args) == 0 {
		return nil, errors.New("--debezium-cmd is empty")
	}
	if d.proc, err = startChild(filepath.Join(dir, "run.log"), d.env, args[0], args[1:]...); err != nil {
		_ = d.Close(ctx)
		return nil, err
	}
	if err := d.awaitSlot(ctx, 180*time.Second); err != nil {
		_ = d.Close(ctx)
		return nil, err
	}
	return d, nil
}

// awaitSlot waits until Debezium's replication slot exists and is active.
func (d *dbzPipe) awaitSlot(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if done, err := d.proc.exited(); done {
			return fmt.Errorf("debezium exited while starting (%v); see %s and the log under the Debezium cache (run/debezium.log)",
				err, filepath.Join(d.dir, "run.log"))
		}
		var active bool
		err := d.admin.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&active)
		if err == nil && active {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("debezium: slot %s not active after %s", d.slot, limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *dbzPipe) Name() string    { return "debezium" }
func (d *dbzPipe) Topic() string   { return d.prefix + ".public." + d.table }
func (d *dbzPipe) Decode() Decoder { return DecodeDebezium }
func (d *dbzPipe) PID() int        { return d.proc.pid() }

func (d *dbzPipe) Settings() map[string]string {
	s := map[string]string{
		"command":   d.o.DebeziumCmd + " (Debezium Server 2.7.3.Final, JVM defaults)",
		"connector": "io.debezium.connector.postgresql.PostgresConnector, plugin.name=pgoutput, snapshot.mode=initial (empty table), publication " + d.slot + " (the one table), slot " + d.slot,
		"format":    "JSON with schemas (Debezium Server's default), binary.handling.mode=bytes (base64), tombstones.on.delete=true",
		"sink":      "kafka, acks=all, enable.idempotence=true (client defaults), topic " + d.Topic() + fmt.Sprintf(" pre-created with %d partitions", d.o.Partitions),
		"table":     fmt.Sprintf("%s (k text COLLATE \"C\" PRIMARY KEY, v bytea NOT NULL), REPLICA IDENTITY DEFAULT", d.table),
		"load":      fmt.Sprintf("one transaction per batch (pgx pipeline, %d connections): upserts INSERT ... ON CONFLICT (k) DO UPDATE, DELETE per key, in key order", d.o.PGConns),
	}
	for _, t := range dbzTuning {
		if v := dbzSetting(t.env, t.value); v != t.value {
			s[t.prop] = v + " (from $" + t.env + "; default " + t.value + ")"
			continue
		}
		s[t.prop] = t.value + ": " + t.why
	}
	return s
}

const upsertSQL = `INSERT INTO %s (k, v) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = excluded.v`

// dbzPlan is a batch as one transaction: the last mutation of each key, in
// key order (so concurrent transactions lock rows in the same order and
// never deadlock), as runs of upserts and single deletes.
type dbzPlan struct {
	keys  []string
	muts  []*wailv1.Mutation // winner of each key, parallel to keys
	final map[string]int     // key -> index in keys
}

func planBatch(muts []*wailv1.Mutation) dbzPlan {
	last := map[string]*wailv1.Mutation{}
	for _, m := range muts {
		last[string(m.GetKey())] = m
	}
	p := dbzPlan{final: map[string]int{}}
	for k := range last {
		p.keys = append(p.keys, k)
	}
	slices.Sort(p.keys)
	for i, k := range p.keys {
		p.muts = append(p.muts, last[k])
		p.final[k] = i
	}
	return p
}

// Write applies the batch in one implicit transaction (one pgx batch: the
// statements and txid_current() in one round trip) and answers every write
// with the transaction id, which Debezium's events carry as source.txId.
func (d *dbzPipe) Write(ctx context.Context, muts []*wailv1.Mutation) ([]ack, error) {
	p := planBatch(muts)
	b := &pgx.Batch{}
	type stmt struct {
		del bool
		idx int // the key of a delete
	}
	var stmts []stmt
	ident := pgx.Identifier{d.table}.Sanitize()
	for i := 0; i < len(p.keys); {
		if p.muts[i].GetOp() == wailv1.Op_OP_DELETE {
			b.Queue(`DELETE FROM `+ident+` WHERE k = $1`, p.keys[i])
			stmts = append(stmts, stmt{del: true, idx: i})
			i++
			continue
		}
		var ks []string
		var vs [][]byte
		for ; i < len(p.keys) && p.muts[i].GetOp() != wailv1.Op_OP_DELETE; i++ {
			ks, vs = append(ks, p.keys[i]), append(vs, p.muts[i].GetValue())
		}
		b.Queue(fmt.Sprintf(upsertSQL, ident), ks, vs)
		stmts = append(stmts, stmt{})
	}
	b.Queue(`SELECT txid_current() % 4294967296`)
	br := d.pool.SendBatch(ctx, b)
	deleted := make([]bool, len(p.keys))
	for _, s := range stmts {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, err
		}
		if s.del {
			deleted[s.idx] = tag.RowsAffected() == 1
		}
	}
	var txid int64
	if err := br.QueryRow().Scan(&txid); err != nil {
		_ = br.Close()
		return nil, err
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	out := make([]ack, len(muts))
	for i, m := range muts {
		j := p.final[string(m.GetKey())]
		out[i].token = uint64(txid)
		out[i].noEvent = p.muts[j].GetOp() == wailv1.Op_OP_DELETE && !deleted[j]
	}
	return out, nil
}

// Close stops Debezium, then drops its slot (retrying while the walsender
// winds down), the publication, the table and the topic.
func (d *dbzPipe) Close(ctx context.Context) error {
	var errs []error
	if d.proc != nil {
		if err := d.proc.stop(40 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("debezium: %w", err))
		}
	}
	if d.pool != nil {
		d.pool.Close()
	}
	if err := d.dropSlot(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, q := range []string{
		`DROP PUBLICATION IF EXISTS ` + pgx.Identifier{d.slot}.Sanitize(),
		`DROP TABLE IF EXISTS ` + pgx.Identifier{d.table}.Sanitize(),
	} {
		if _, err := d.admin.Exec(ctx, q); err != nil {
			errs = append(errs, err)
		}
	}
	if err := d.topics.delete(ctx, d.Topic()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		_ = os.RemoveAll(d.dir)
	}
	return errors.Join(errs...)
}

// dropSlot drops the replication slot as Debezium's replication role (the
// bench's own role may not), retrying while the walsender winds down.
func (d *dbzPipe) dropSlot(ctx context.Context) error {
	cfg, err := pgx.ParseConfig(d.o.DSN)
	if err != nil {
		return err
	}
	cfg.User, cfg.Password = d.o.DebeziumUser, d.o.DebeziumPassword
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("drop slot %s: %w", d.slot, err)
	}
	defer conn.Close(ctx)
	for i := 0; ; i++ {
		_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, d.slot)
		if err == nil {
			return nil
		}
		if i == 40 {
			return fmt.Errorf("drop slot %s: %w", d.slot, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
