package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// allocated is what the process has allocated so far.
func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestManySubMessagesRefusedBeforeDecoding: an EventService or
// AdminService request of 1 MiB (api.max_admin_request_bytes) made of
// empty repeated messages (two bytes each in protobuf, three in JSON)
// is refused before it is decoded: decoded, each became a struct of its
// own, 40 times the bytes (a 1 MiB Ack took 40 MiB), and the body budget
// bounds bytes, not what they decode to. Not parallel: it counts the
// process's allocations.
func TestManySubMessagesRefusedBeforeDecoding(t *testing.T) {
	c := start(t, func(cfg *config.Config) { cfg.Tables = []config.Table{{Name: "t"}} })
	const size = 1<<20 - 64
	var bin []byte
	bin = protowire.AppendTag(bin, 1, protowire.BytesType)
	bin = protowire.AppendString(bin, "t")
	for len(bin) < size {
		bin = protowire.AppendTag(bin, 4, protowire.BytesType) // an empty PartitionAck
		bin = protowire.AppendVarint(bin, 0)
	}
	js := []byte(`{"table":"t","acks":[{}` + strings.Repeat(`,{}`, size/3) + `]}`)
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{{"proto", "application/proto", bin}, {"json", "application/json", js}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+wailv1connect.EventServiceAckProcedure, bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.contentType)
		runtime.GC()
		before := allocated()
		resp, err := http.DefaultClient.Do(req)
		took := allocated() - before
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s: a %d KiB Ack of empty acks: HTTP %d, %d MiB allocated", tc.name, len(tc.body)>>10, resp.StatusCode, took>>20)
		if took > 16<<20 {
			t.Errorf("%s: a %d KiB Ack of empty acks allocated %d MiB; want it refused before it is decoded", tc.name, len(tc.body)>>10, took>>20)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(answer), "limits.max_table_partitions") {
			t.Errorf("%s: answered %d %s; want invalid_argument naming limits.max_table_partitions", tc.name, resp.StatusCode, answer)
		}
	}
}
