// Package sqlstore holds what the SQL stores (postgres, mysql) share and
// does not depend on a driver: how a wail table is named in SQL, which
// mutations of a batch win, and waiting between retries.
package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Prefixes of the SQL table names (the fifth byte, '_' or 'h', tells the
// two forms apart).
const (
	RowPrefix  = "wail_"
	LongPrefix = "wailh_"
)

// TableName returns the SQL name of a wail table that passed
// store.ValidateTableName, for a database whose identifiers are at most
// maxIdent bytes. Distinct names give distinct SQL names: short ones are
// wail_<name>, long ones wailh_<first 40 bytes>_<hash>, since databases
// silently truncate (PostgreSQL) or reject (MySQL) longer identifiers.
func TableName(name string, maxIdent int) string {
	n := RowPrefix + name
	if len(n) > maxIdent {
		sum := sha256.Sum256([]byte(name))
		n = LongPrefix + name[:40] + "_" + hex.EncodeToString(sum[:8])
	}
	return n
}

// Winners returns, per distinct key of muts in order of first appearance,
// the index of the mutation that stands for it (the highest version; on a
// tie the earliest), and for every mutation the position of its key in
// that list. Versions must fit a signed 64-bit column.
func Winners(muts []store.Mutation) (winners []int, slot []int, err error) {
	byKey := make(map[string]int, len(muts))
	slot = make([]int, len(muts))
	for i, m := range muts {
		if m.Version > math.MaxInt64 {
			return nil, nil, fmt.Errorf("key %q: version %d does not fit a signed 64-bit column", m.Key, m.Version)
		}
		j, dup := byKey[string(m.Key)]
		switch {
		case !dup:
			j = len(winners)
			byKey[string(m.Key)] = j
			winners = append(winners, i)
		case m.Version > muts[winners[j]].Version:
			winners[j] = i
		}
		slot[i] = j
	}
	return winners, slot, nil
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
