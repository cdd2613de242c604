package cassandra

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"

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
// A create that read the generation just before a drop of the same name
// moved it on, and runs its CREATE TABLE after that drop, makes the
// dropped table's id again. So CreateTable looks after its CREATE: it
// reads the table's id (system_schema.tables), then the generation at
// SERIAL, and returns only when the table holds the current generation's
// id. A table under an older generation's id is condemned: a drop of the
// name began after it was made (the generation moves only so), and drops
// whatever table holds the name. The creator that finds one claims its
// repair as a drop does, by moving the generation on (a lightweight
// transaction; of racing creators one wins, the others look again),
// drops it and creates it anew.
//
// A repair must never drop the table of a create that returned (the
// catalog marks the table ready then, and writes start). A create
// confirms the table it returns with by setting made = gen, by a
// lightweight transaction conditional on gen: a claim is conditional on
// the generation and on made as the claimer read them, and the claimer
// does not claim when made is already the generation. So a claim and a
// confirmation of one generation exclude each other, and no claim of an
// older generation can apply once the generation moved past it. Before
// its DROP the claimer checks the table still is not the one of the
// generation it moved to. Left: a DROP that reaches Cassandra long after
// its claim (a process paused between the check and the DROP for as long
// as another creator takes to make, confirm and ready the table) drops
// that table, as a drop of the name delayed so long would.
const generationTable = "wail__generations"

// ensureGenerations creates the generation table once per store (lazily,
// at the first create or drop).
func (s *Store) ensureGenerations(ctx context.Context) error {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if s.gensReady {
		return nil
	}
	err := s.ddl(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (name text PRIMARY KEY, gen bigint, made bigint) WITH ID = %s",
		s.ks, generationTable, tableID(s.ks, generationTable)))
	if err != nil {
		return err
	}
	// The table of an earlier release has no made column. (A process
	// adding it at the same time makes the ALTER fail on the existing
	// column, which is the work done.)
	var n int
	err = s.session.Query("SELECT count(*) FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = 'made'",
		s.ks, generationTable).WithContext(ctx).Consistency(gocql.One).Scan(&n)
	if err != nil {
		return fmt.Errorf("the columns of %s: %w", generationTable, s.classify(ctx, err))
	}
	if n == 0 {
		err = s.ddl(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD made bigint", s.ks, generationTable))
		if err != nil && !strings.Contains(err.Error(), "conflicts with an existing column") && !strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("add made to %s: %w", generationTable, err)
		}
	}
	s.gensReady = true
	return nil
}

// generation reads table's generation at SERIAL (what Paxos decided
// last); 0 when it has none.
func (s *Store) generation(ctx context.Context, table string) (int64, error) {
	g, err := s.genState(ctx, table)
	return g.gen, err
}

// genRow is a table's row of the generation table.
type genRow struct {
	gen  int64
	made *int64 // the generation a create confirmed its table of; nil: none
}

// confirmed: a create returned with the table of the current generation.
func (g genRow) confirmed() bool { return g.gen == 0 || g.made != nil && *g.made == g.gen }

// genState reads table's row at SERIAL; generation 0 when it has none.
func (s *Store) genState(ctx context.Context, table string) (genRow, error) {
	if err := s.ensureGenerations(ctx); err != nil {
		return genRow{}, err
	}
	var g genRow
	err := s.paxos(ctx, func() error {
		g = genRow{}
		err := s.session.Query(fmt.Sprintf("SELECT gen, made FROM %s.%s WHERE name = ?", s.ks, generationTable), table).
			WithContext(ctx).Consistency(gocql.Consistency(gocql.Serial)).Scan(&g.gen, &g.made)
		if errors.Is(err, gocql.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return genRow{}, fmt.Errorf("the generation of table %s: %w", table, s.classify(ctx, err))
	}
	return g, nil
}

// confirmGeneration records that a create returns with the table of
// generation gen; false when the generation moved on meanwhile.
// Generation 0 needs no record: no claim is ever made on it.
func (s *Store) confirmGeneration(ctx context.Context, table string, gen int64) (bool, error) {
	if gen == 0 {
		return true, nil
	}
	applied, err := s.cas(ctx, fmt.Sprintf("UPDATE %s.%s SET made = ? WHERE name = ? IF gen = ?", s.ks, generationTable), gen, table, gen)
	if err != nil {
		return false, fmt.Errorf("confirming the generation of table %s: %w", table, s.classify(ctx, err))
	}
	return applied, nil
}

// claimRepair moves table's generation on from g, as a drop does, unless
// it changed since g was read or a create confirmed it meanwhile.
func (s *Store) claimRepair(ctx context.Context, table string, g genRow) (bool, error) {
	var made any // null
	if g.made != nil {
		made = *g.made
	}
	applied, err := s.cas(ctx, fmt.Sprintf("UPDATE %s.%s SET gen = ? WHERE name = ? IF gen = ? AND made = ?", s.ks, generationTable),
		g.gen+1, table, g.gen, made)
	if err != nil {
		return false, fmt.Errorf("moving the generation of table %s on: %w", table, s.classify(ctx, err))
	}
	return applied, nil
}

// generationOf returns the generation below before whose id id is, or
// -1 when it is none of them.
func generationOf(ks, cname string, id gocql.UUID, before int64) int64 {
	for g := before - 1; g >= 0; g-- {
		if generationID(ks, cname, g) == id {
			return g
		}
	}
	return -1
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
