package cassandra

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gocql/gocql"
)

// A wail table dropped and created again must be another Cassandra table.
// Cassandra tells tables apart by id, not by name, when a node applies
// schema changes it missed (it was down, or cut off, during the drop):
// the table it finds afterwards under the same id is, to it, the table it
// has, unchanged, so it never drops its rows; reads at ONE through that
// node, its read repairs and snapshots would bring them back. And
// Cassandra drops tables by name, with no condition on the id: a DROP
// TABLE that reaches Cassandra long after it was sent (the client gave
// up, the coordinator applied it later; a process paused between its
// decision and its DROP) drops whatever table holds the name then.
//
// So each generation of a wail table (how many times it was dropped,
// kept per wail table in wail__generations and changed only by
// lightweight transactions) has a Cassandra table of its own name:
// generation 0 (no row: never dropped) the name earlier releases gave
// (tableName), generation g > 0 wailg<g>_<name> (generationName), each
// with the id derived from its name (tableID). A drop moves the
// generation on, then drops the table of the generation it moved from; a
// create reads the generation at SERIAL and creates that generation's
// table. A name is the table of one generation only, and the generation
// never moves back, so a DROP of an older generation's name, however
// late, can never drop a newer generation's table, and a table made
// under an older generation's name (the late CREATE of a creator that
// read the generation before a drop moved it on) is never read or written
// once that is known: it is garbage, dropped by the next create or drop
// of the table (sweep).
//
// Every statement on a wail table names its current generation's table,
// cached per process (gens): filled by a SERIAL read of the generation,
// set by CreateTable, dropped by DropTable and by Tables when the table's
// catalog entry changed since the generation was read (a table created
// again is a new catalog entry: every process serving it read the
// catalog after the new generation's table was made). A statement that
// finds its table gone (the cached generation was dropped since) reads
// the generation again and runs again on the new one.
const generationTable = "wail__generations"

// ensureGenerations creates the generation table once per store (lazily,
// at the first use of a table).
func (s *Store) ensureGenerations(ctx context.Context) error {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.gensReady {
		return nil
	}
	// (Earlier builds gave it a made column too, now unused.)
	err := s.ensureTable(ctx, generationTable, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (name text PRIMARY KEY, gen bigint) WITH ID = %s",
		s.ks, generationTable, tableID(s.ks, generationTable)))
	if err != nil {
		return err
	}
	s.gensReady = true
	return nil
}

// generation reads table's generation at SERIAL (what Paxos decided
// last); 0 when it has none.
func (s *Store) generation(ctx context.Context, table string) (int64, error) {
	if err := s.ensureGenerations(ctx); err != nil {
		return 0, err
	}
	var gen int64
	err := s.paxos(ctx, func(ctx context.Context) error {
		gen = 0
		// Every request of a table reads its generation first, at the
		// process's first use and after a drop: a coordinator that
		// stalls must not hold them all for their whole deadline
		// (TestFirstReadsDuringAStall). Not sent twice at once, as
		// other reads are (retry.go): two SERIAL reads of a row contend
		// in Paxos. An attempt cut short is tried again (paxos), on
		// another coordinator.
		actx, cancel := context.WithTimeout(ctx, s.timeout/4)
		defer cancel()
		return s.hook("generation", func() error {
			err := s.session.Query(fmt.Sprintf("SELECT gen FROM %s.%s WHERE name = ?", s.ks, generationTable), table).
				WithContext(withKey(actx, []byte(table))).Consistency(gocql.Consistency(gocql.Serial)).Scan(&gen)
			if errors.Is(err, gocql.ErrNotFound) {
				return nil
			}
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("the generation of table %s: %w", table, s.classify(ctx, err))
	}
	return gen, nil
}

// nextGeneration moves table's generation past the one it has now and
// returns the generation it moved from. A swap that is not applied means
// another process moved it on meanwhile, which is as good: the
// generation is past the one read either way.
func (s *Store) nextGeneration(ctx context.Context, table string) (int64, error) {
	gen, err := s.generation(ctx, table)
	if err != nil {
		return 0, err
	}
	if err := s.moveGeneration(ctx, table, gen); err != nil {
		return 0, err
	}
	return gen, nil
}

// moveGeneration moves table's generation from gen to gen+1 if it is gen.
// It is past gen afterwards either way: one that is not gen any more was
// moved on by another drop (generations never move back), and is left as
// it is.
func (s *Store) moveGeneration(ctx context.Context, table string, gen int64) error {
	if err := s.ensureGenerations(ctx); err != nil {
		return err
	}
	stmt, args := fmt.Sprintf("UPDATE %s.%s SET gen = ? WHERE name = ? IF gen = ?", s.ks, generationTable), []any{gen + 1, table, gen}
	if gen == 0 {
		stmt, args = fmt.Sprintf("INSERT INTO %s.%s (name, gen) VALUES (?, ?) IF NOT EXISTS", s.ks, generationTable), []any{table, int64(1)}
	}
	if _, err := s.cas(ctx, stmt, args...); err != nil {
		return fmt.Errorf("moving the generation of table %s on from %d: %w", table, gen, s.classify(ctx, err))
	}
	return nil
}

// sweep drops the Cassandra tables of table's generations below below
// that exist: each is garbage (generation.go), so a DROP of one, however
// late, touches no table in use. A table under another id than wail
// gives its name (made by hand, or by a build that kept every generation
// under the name of generation 0) is left as it is.
func (s *Store) sweep(ctx context.Context, table string, below int64) error {
	iter := s.session.Query("SELECT table_name, id FROM system_schema.tables WHERE keyspace_name = ?", s.ks).
		WithContext(ctx).Consistency(gocql.One).Iter()
	var stale []string
	var cname string
	var id gocql.UUID
	for iter.Scan(&cname, &id) {
		if g, ok := generationOfName(table, cname); ok && g < below && id == tableID(s.ks, cname) {
			stale = append(stale, cname)
		}
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("the tables of keyspace %s: %w", s.ks, s.classify(ctx, err))
	}
	for _, cname := range stale {
		if err := s.hook("drop", func() error { return s.ddl(ctx, "DROP TABLE IF EXISTS "+s.ks+"."+cname) }); err != nil {
			return fmt.Errorf("dropping %s: %w", cname, err)
		}
	}
	return nil
}

// gens caches the current generation of the tables a store used.
type gens struct {
	mu    sync.Mutex
	m     map[string]cachedGen
	epoch uint64              // counts forgets: a read begun before one is not cached, nor shared after it
	reads map[string]*genRead // the read in flight of each table, shared by the requests that need it
}

// genRead is a read of a table's generation at SERIAL that the requests
// needing it at once share: each read of its own, concurrent on one row,
// contended in Paxos (the first requests of a table come together: a
// resolver's jobs, a subscription's reads), and with a coordinator
// stalled they outlasted their deadlines (TestFirstReadsDuringAStall).
// A request shares a read begun at its own epoch and catalog seq only:
// one that knows of a forget or a newer catalog entry reads again.
type genRead struct {
	epoch     uint64
	asOf      int64
	done      chan struct{} // closed when gen and err are set
	gen       int64
	err       error
	abandoned bool // the reader's own context ended it: the others read again
}

type cachedGen struct {
	gen  int64
	asOf int64 // the catalog entry's seq known before the generation was read; -1: none
}

// currentGen returns table's current generation, from the cache or read
// at SERIAL (genRead: shared with the requests that need it meanwhile).
func (s *Store) currentGen(ctx context.Context, table string) (int64, error) {
	for {
		asOf := s.seqs.asOf(table)
		s.gens.mu.Lock()
		if c, ok := s.gens.m[table]; ok {
			s.gens.mu.Unlock()
			return c.gen, nil
		}
		epoch := s.gens.epoch
		if r := s.gens.reads[table]; r != nil && r.epoch == epoch && r.asOf == asOf {
			s.gens.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return 0, fmt.Errorf("the generation of table %s: %w", table, ctx.Err())
			}
			if r.abandoned {
				continue
			}
			return r.gen, r.err
		}
		r := &genRead{epoch: epoch, asOf: asOf, done: make(chan struct{})}
		if s.gens.reads == nil {
			s.gens.reads = map[string]*genRead{}
		}
		s.gens.reads[table] = r
		s.gens.mu.Unlock()

		s.readGen(ctx, table, r)
		if r.err != nil {
			return 0, r.err
		}
		s.rememberGen(table, r.gen, asOf, epoch)
		return r.gen, nil
	}
}

// readGen reads table's generation for r and the requests sharing it.
// Those read again if this one's context ended it, or it panicked (a
// panic recovered above would otherwise leave r in flight for good, and
// every later request of the table waiting on it until its deadline;
// TestGenerationReadPanickedIsNotWaitedFor).
func (s *Store) readGen(ctx context.Context, table string, r *genRead) {
	r.abandoned = true
	defer func() {
		s.gens.mu.Lock()
		if s.gens.reads[table] == r {
			delete(s.gens.reads, table)
		}
		s.gens.mu.Unlock()
		close(r.done)
	}()
	r.gen, r.err = s.generation(ctx, table)
	r.abandoned = r.err != nil && ctx.Err() != nil
}

// rememberGen caches gen, read with the catalog entry at seq asOf, unless
// the cache forgot something since epoch (then table's entry goes too:
// the next use reads the generation), or a newer entry is known now, or
// cached: a read begun before Tables saw the table's entry change may
// end after that forget, which saw only the read in flight then (begun
// after; TestGenerationReadBeforeANewEntryNotCachedOverIt).
func (s *Store) rememberGen(table string, gen, asOf int64, epoch uint64) {
	known := s.seqs.asOf(table)
	s.gens.mu.Lock()
	defer s.gens.mu.Unlock()
	if s.gens.epoch != epoch {
		delete(s.gens.m, table)
		return
	}
	if known > asOf {
		return
	}
	if c, ok := s.gens.m[table]; ok && c.asOf > asOf {
		return
	}
	if s.gens.m == nil {
		s.gens.m = map[string]cachedGen{}
	}
	s.gens.m[table] = cachedGen{gen: gen, asOf: asOf}
}

// forgetGen drops table's cached generation: all of them when seq < 0,
// else only one read before the catalog entry reached seq.
func (s *Store) forgetGen(table string, seq int64) {
	s.gens.mu.Lock()
	defer s.gens.mu.Unlock()
	if c, ok := s.gens.m[table]; ok && (seq < 0 || c.asOf < seq) {
		delete(s.gens.m, table)
		s.gens.epoch++
	} else if r := s.gens.reads[table]; r != nil && (seq < 0 || r.asOf < seq) {
		s.gens.epoch++ // the read in flight began before: no request shares it now, nor is it cached
	}
}

// onTable runs op on the Cassandra table (keyspace.name) of table's
// current generation. When Cassandra does not know that table and gone
// says the error means so (op did nothing), the generation is read again
// and, if it moved on (the cached one was dropped since), op runs again
// on the new generation's table.
func (s *Store) onTable(ctx context.Context, table string, gone func(error) bool, op func(q string) error) error {
	gen, err := s.currentGen(ctx, table)
	if err != nil {
		return err
	}
	err = op(s.ks + "." + generationName(table, gen))
	if err == nil || !gone(err) {
		return err
	}
	s.forgetGen(table, -1)
	now, nerr := s.currentGen(ctx, table)
	if nerr != nil || now == gen {
		return err
	}
	return op(s.ks + "." + generationName(table, now))
}

// isWailTable: cname is the Cassandra table of some generation of a wail
// table, or one of wail's own.
func isWailTable(cname string) bool {
	return strings.HasPrefix(cname, "wail_") || strings.HasPrefix(cname, "wailh_") || strings.HasPrefix(cname, "wailg")
}
