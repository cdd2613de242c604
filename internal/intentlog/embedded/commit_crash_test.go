package embedded

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestCommitInterruptedByCrash: a commit that stops at any of its disk
// operations (a failing call, then a power loss, which may tear the files
// it was writing) leaves the group's offsets as they were before it, or as
// it committed them when it said it did: the log opens, and Committed
// returns one of the two, never a mix and never an error.
func TestCommitInterruptedByCrash(t *testing.T) {
	for _, torn := range []bool{false, true} {
		for k := 0; ; k++ {
			mem := vfs.NewMem()
			efs := vfs.NewErrorFS(mem)
			l := openLog(t, "/log", Options{FS: efs})
			createTestTopic(t, l, 2, intentlog.TopicOptions{})
			ctx := context.Background()
			noErr(t, l.Append(ctx, testTopic, manyRecords("r", 40)))
			before, after := map[int32]int64{0: 1}, map[int32]int64{0: 2, 1: 1}
			noErr(t, l.Commit(ctx, "g", testTopic, before))
			efs.Inject(vfs.Fault{Ops: vfs.OpMutate, After: k, Times: 1})
			err := l.Commit(ctx, "g", testTopic, after)
			if efs.Fired() == 0 {
				_ = l.Close()
				if k < 5 {
					t.Fatalf("torn %v: the commit made only %d disk operations", torn, k)
				}
				break
			}
			var crashed *vfs.MemFS
			if torn {
				crashed = mem.CrashTorn(rand.New(rand.NewPCG(uint64(k), 1)))
			} else {
				crashed = mem.Crash()
			}
			_ = l.Close()
			l, oerr := Open("/log", Options{FS: crashed, Logger: testLogger(t)})
			if oerr != nil {
				t.Fatalf("torn %v, k=%d (commit: %v): Open after a crash: %v", torn, k, err, oerr)
			}
			got, cerr := l.Committed(ctx, "g", testTopic)
			_ = l.Close()
			ok := cerr == nil && (maps.Equal(got, after) || err != nil && maps.Equal(got, before))
			if !ok {
				t.Errorf("torn %v, k=%d (commit: %v): Committed after a crash = %v, %v; want %v%s", torn, k, err, got, cerr, after,
					map[bool]string{true: fmt.Sprintf(" or %v", before)}[err != nil])
			}
		}
	}
}
