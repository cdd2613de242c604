package cassandra

// What Cassandra does with the statements of stmts.go, modelled without a
// cluster: replicas keep each cell with the highest write timestamp, and a
// read above ONE that finds replicas apart writes the merged cells back to
// them (blocking read repair), but only the cells of the columns the SELECT
// names (RowIteratorMergeListener.isQueried, Cassandra 4.0 and later; the
// read_repair table option's documentation: "only the data covered by a
// SELECT statement is repaired by a read repair, read repair can break
// write atomicity when data is read at a more granular level than it is
// written").

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

type cell struct {
	ts  int64
	val string
}

// replica is one replica's cells of one key, by column.
type replica map[string]cell

// newer reports whether a beats b: the higher timestamp, on a tie the
// greater value (live cells).
func newer(a, b cell) bool { return a.ts > b.ts || a.ts == b.ts && a.val > b.val }

func (r replica) apply(cells map[string]cell) {
	for col, c := range cells {
		if cur, ok := r[col]; !ok || newer(c, cur) {
			r[col] = c
		}
	}
}

// columns returns the regular columns a statement names: an INSERT's
// column list, a SELECT's selection (the primary key, key, is no cell).
func columns(t *testing.T, stmt string) []string {
	t.Helper()
	var list string
	switch {
	case strings.HasPrefix(stmt, "INSERT INTO "):
		_, rest, _ := strings.Cut(stmt, "(")
		list, _, _ = strings.Cut(rest, ")")
	case strings.HasPrefix(stmt, "SELECT "):
		list, _, _ = strings.Cut(strings.TrimPrefix(stmt, "SELECT "), " FROM ")
	default:
		t.Fatalf("statement %q: not an INSERT or a SELECT", stmt)
	}
	var out []string
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if inner, ok := strings.CutPrefix(c, "WRITETIME("); ok {
			c = strings.TrimSuffix(inner, ")") // names the column too (TestReadRepairOnTheCluster)
		}
		if c != "key" {
			out = append(out, c)
		}
	}
	return out
}

// insert applies insertStmt's write of value at version v to replicas.
func insert(t *testing.T, value string, v int64, replicas ...replica) {
	t.Helper()
	vals := map[string]string{"value": value, "version": fmt.Sprint(v), "deleted": "false", "schema_id": "0"}
	cells := map[string]cell{}
	for _, col := range columns(t, insertStmt("ks.wail_t")) {
		val, ok := vals[col]
		if !ok {
			t.Fatalf("the model has no value for column %q of the INSERT", col)
		}
		cells[col] = cell{v, val}
	}
	for _, r := range replicas {
		r.apply(cells)
	}
}

// read returns the merged cells of cols from replicas and, as blocking
// read repair does when there is more than one, writes back to each the
// merged cells it lacks: of cols only.
func read(cols []string, replicas ...replica) map[string]cell {
	merged := map[string]cell{}
	for _, r := range replicas {
		for _, col := range cols {
			if c, ok := r[col]; ok {
				if cur, seen := merged[col]; !seen || newer(c, cur) {
					merged[col] = c
				}
			}
		}
	}
	if len(replicas) > 1 {
		for _, r := range replicas {
			r.apply(merged)
		}
	}
	return merged
}

// TestReadRepairKeepsRowsWhole: a replica that missed the latest write of a
// key (acknowledged by the two others at LOCAL_QUORUM; hints are off) is
// read at LOCAL_QUORUM by the version read of a later write of the key.
// Afterwards a Get at ONE served by that replica must return one write,
// whole: not the new version with the old value, which the resolver would
// publish as the new version's event (e2etest's invariant 2).
func TestReadRepairKeepsRowsWhole(t *testing.T) {
	t.Parallel()
	const q = "ks.wail_t"
	r1, r2, r3 := replica{}, replica{}, replica{}
	insert(t, "hot-6#w5#566", 100, r1, r2, r3)
	insert(t, "hot-6#w4#597", 200, r1, r2) // r3 dropped it (write_request_timeout), no hint

	read(columns(t, versionStmt(q)), r3, r1) // writeKey, LOCAL_QUORUM: r3 and r1

	row := read(columns(t, getStmt(q)), r3) // the resolver's first read, ONE: r3
	version, value := row["version"].val, row["value"].val
	if want := map[string]string{"100": "hot-6#w5#566", "200": "hot-6#w4#597"}[version]; value != want {
		t.Errorf("read at ONE after the version read at LOCAL_QUORUM: version %s with value %q (of version %d): a row that is neither write",
			version, value, row["value"].ts)
	}
}

// TestReadsNameEveryColumn: every read of a wail table that can repair
// (above ONE) names every column the INSERT writes, so that a read repair
// carries whole writes.
func TestReadsNameEveryColumn(t *testing.T) {
	t.Parallel()
	const q = "ks.wail_t"
	written := columns(t, insertStmt(q))
	for name, stmt := range map[string]string{"getStmt": getStmt(q), "versionStmt": versionStmt(q), "scanStmt": scanStmt(q, "LIMIT ?")} {
		read := columns(t, stmt)
		for _, col := range written {
			if !slices.Contains(read, col) {
				t.Errorf("%s (%q) does not read column %s, which the INSERT writes: a read repair it triggers would leave rows mixed", name, stmt, col)
			}
		}
	}
}
