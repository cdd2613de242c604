package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store/cassandra"
)

// fakeTables is a store whose tables have the given options.
type fakeTables struct {
	tables []cassandra.TableOptions
	err    error
}

func (f fakeTables) TableOptions(context.Context) ([]cassandra.TableOptions, error) {
	return f.tables, f.err
}

// TestDoctorReadRepair: doctor passes when every wail table keeps
// read_repair = 'BLOCKING', reports the tables whose option it cannot
// tell, and fails naming each table with read_repair = 'NONE' and the
// ALTER TABLE that sets it back.
func TestDoctorReadRepair(t *testing.T) {
	t.Parallel()
	table := func(name, rr string) cassandra.TableOptions {
		return cassandra.TableOptions{Keyspace: "ks", Table: name, ReadRepair: rr}
	}
	for _, tc := range []struct {
		name   string
		store  fakeTables
		out    []string // lines, in order
		err    string   // "": passes
		absent string   // not in the output
	}{
		{
			name:  "all blocking",
			store: fakeTables{tables: []cassandra.TableOptions{table("wail__catalog", "BLOCKING"), table("wail_orders", "BLOCKING")}},
			out:   []string{"read_repair  ok (BLOCKING on every wail table: wail__catalog, wail_orders)"},
		},
		{
			name:  "no tables",
			store: fakeTables{},
			out:   []string{"read_repair  ok (no wail tables)"},
		},
		{
			name: "one none",
			store: fakeTables{tables: []cassandra.TableOptions{
				table("wail__catalog", "BLOCKING"), table("wail_orders", "NONE"), table("wail_users", "BLOCKING"),
			}},
			out: []string{"read_repair  BLOCKING on 2 of the 3 wail tables: wail__catalog, wail_users"},
			err: "ks.wail_orders has read_repair = 'NONE': wail relies on blocking read repair (without it a write the resolver found " +
				"on one replica only could be published and then lost with that replica, and reads are not monotonic); " +
				"run: ALTER TABLE ks.wail_orders WITH read_repair = 'BLOCKING';",
		},
		{
			name: "two none",
			store: fakeTables{tables: []cassandra.TableOptions{
				table("wail_a", "NONE"), table("wail_b", "none"),
			}},
			err: "ks.wail_a, ks.wail_b have read_repair = 'NONE': wail relies on blocking read repair (without it a write the resolver found " +
				"on one replica only could be published and then lost with that replica, and reads are not monotonic); " +
				"run: ALTER TABLE ks.wail_a WITH read_repair = 'BLOCKING'; ALTER TABLE ks.wail_b WITH read_repair = 'BLOCKING';",
			absent: "BLOCKING on",
		},
		{
			name: "option unknown",
			store: fakeTables{tables: []cassandra.TableOptions{
				table("wail__catalog", "BLOCKING"), table("wail_old", ""), table("wail_odd", "SOMETIMES"),
			}},
			out: []string{
				"read_repair  BLOCKING on 1 of the 3 wail tables: wail__catalog",
				"read_repair  unknown on wail_old (not told), wail_odd ('SOMETIMES'); " +
					"wail needs 'BLOCKING' (a cluster before Cassandra 4.0 does not tell it)",
			},
		},
		{
			name:  "options unreadable",
			store: fakeTables{err: errors.New("cassandra: table options: store unavailable")},
			err:   "cassandra: table options: store unavailable",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w strings.Builder
			err := doctorReadRepair(context.Background(), tc.store, &w)
			out := w.String()
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("failed: %v\n%s", err, out)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err %v, want it to hold %q\n%s", err, tc.err, out)
			}
			rest := out
			for _, line := range tc.out {
				i := strings.Index(rest, line+"\n")
				if i < 0 {
					t.Fatalf("no line %q (in order) in:\n%s", line, out)
				}
				rest = rest[i+len(line):]
			}
			if tc.absent != "" && strings.Contains(out, tc.absent) {
				t.Errorf("%q printed:\n%s", tc.absent, out)
			}
		})
	}
}
