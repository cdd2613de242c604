package cassandra

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"

	"github.com/gocql/gocql"
)

// A wail table dropped and created again must be another Cassandra table,
// with another id. Cassandra tells tables apart by id, not by name, when
// a node applies schema changes it missed (it was down, or cut off, during
// the drop): the table it finds afterwards under the same id is, to it,
// the table it has, unchanged, so it never drops its rows. They would
// live on in the new table: reads at ONE through that node return them,
// its read repairs copy them to the other replicas, a snapshot lists
// them, and the rows of a table a person dropped come back under the new
// one's name without an event.
//
// Yet every process creating a table at once must give it the same id
// (tableID says why). So the id is derived from the keyspace, the table
// and the table's generation: how many times its Cassandra table was
// dropped, kept per wail table in wail__generations and changed only by
// lightweight transactions. DropTable moves the generation on before it
// drops the table, and CreateTable reads it at SERIAL: creators that race
// read the same generation and make the same table, and a create after a
// drop makes a new one. Generation 0 (no row: no drop since this table
// was first made) is the id earlier releases gave every table, so tables
// that exist keep theirs.
//
// What it does not cover: a create that read the generation just before
// a drop of the same name moved it on, and makes its table after the
// drop, makes the dropped table's id again (wail's lifecycle creates and
// drops a name from different processes at once only when a create fails
// while another creator finishes it).
const generationTable = "wail__generations"

// ensureGenerations creates the generation table once per store (lazily,
// at the first create or drop).
func (s *Store) ensureGenerations(ctx context.Context) error {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.gensReady {
		return nil
	}
	err := s.ddl(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (name text PRIMARY KEY, gen bigint) WITH ID = %s",
		s.ks, generationTable, tableID(s.ks, generationTable)))
	s.gensReady = err == nil
	return err
}

// generation reads table's generation at SERIAL (what Paxos decided
// last); 0 when it has none.
func (s *Store) generation(ctx context.Context, table string) (int64, error) {
	if err := s.ensureGenerations(ctx); err != nil {
		return 0, err
	}
	var gen int64
	err := s.paxos(ctx, func() error {
		err := s.session.Query(fmt.Sprintf("SELECT gen FROM %s.%s WHERE name = ?", s.ks, generationTable), table).
			WithContext(ctx).Consistency(gocql.Consistency(gocql.Serial)).Scan(&gen)
		if errors.Is(err, gocql.ErrNotFound) {
			gen = 0
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("the generation of table %s: %w", table, s.classify(ctx, err))
	}
	return gen, nil
}

// nextGeneration moves table's generation past the one it has now. A
// swap that is not applied means another process moved it on meanwhile,
// which is as good: the generation is past the one read either way.
func (s *Store) nextGeneration(ctx context.Context, table string) error {
	gen, err := s.generation(ctx, table)
	if err != nil {
		return err
	}
	stmt, args := fmt.Sprintf("UPDATE %s.%s SET gen = ? WHERE name = ? IF gen = ?", s.ks, generationTable), []any{gen + 1, table, gen}
	if gen == 0 {
		stmt, args = fmt.Sprintf("INSERT INTO %s.%s (name, gen) VALUES (?, ?) IF NOT EXISTS", s.ks, generationTable), []any{table, int64(1)}
	}
	if _, err := s.cas(ctx, stmt, args...); err != nil {
		return fmt.Errorf("moving the generation of table %s on: %w", table, s.classify(ctx, err))
	}
	return nil
}

// generationID is the id of Cassandra table cname (of keyspace ks) in
// generation gen: tableID's for generation 0, derived from the
// generation too after.
func generationID(ks, cname string, gen int64) gocql.UUID {
	if gen == 0 {
		return tableID(ks, cname)
	}
	sum := sha256.Sum256([]byte("wail/cassandra/table/" + ks + "." + cname + "/generation/" + strconv.FormatInt(gen, 10)))
	var u gocql.UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8 (tableID)
	u[8] = u[8]&0x3f | 0x80
	return u
}
