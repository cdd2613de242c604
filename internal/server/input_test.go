package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

// post sends a raw request body and returns the status and body.
func post(t *testing.T, url, path, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+path, contentType, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStrictJSON: unknown JSON fields and enum names are invalid_argument
// naming the field and what it accepts; nothing is written or created.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.Tables = []config.Table{{Name: "t"}} })
	cases := []struct {
		name, path, body string
		want             []string // substrings of the error message
	}{
		{"misspelt field", "/wail.v1.ProducerService/Put", `{"table":"t","key":"aw==","vaule":"eA=="}`,
			[]string{`unknown field \"vaule\"`, "PutRequest: table, key, value"}},
		{"misspelt nested field", "/wail.v1.ProducerService/Write", `{"mutations":[{"table":"t","key":"aw==","valeu":"eA=="}]}`,
			[]string{`unknown field \"valeu\"`, "Mutation: table, key, op, value"}},
		{"CLI word as enum", "/wail.v1.AdminService/CreateTable", `{"name":"strict","failureMode":"independent"}`,
			[]string{"failureMode", "FAILURE_MODE_TRANSACTIONAL, FAILURE_MODE_INDEPENDENT"}},
		{"short op name", "/wail.v1.ProducerService/Write", `{"mutations":[{"table":"t","key":"aw==","op":"DELETE"}]}`,
			[]string{"op", "OP_UPSERT, OP_DELETE"}},
		// The range of visibilityWindowMs (288230376151721504 wrapped to
		// 9760 ms) is checked by catalog.Millis (the tables' validator).
		{"empty body", "/wail.v1.ProducerService/Put", ``, []string{"empty body"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, c.url, tc.path, "application/json", []byte(tc.body))
			if status != http.StatusBadRequest || !strings.Contains(body, `"invalid_argument"`) {
				t.Fatalf("status %d %s, want 400 invalid_argument", status, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("error %s does not say %q", body, w)
				}
			}
		})
	}
	ctx := context.Background()
	if got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("k")})); err != nil {
		t.Fatal(err)
	} else if got.Msg.Found {
		t.Error("a rejected Put was stored")
	}
	list, err := c.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range list.Msg.Tables {
		if tb.Name == "strict" {
			t.Errorf("a rejected CreateTable created %+v", tb)
		}
	}
	// Valid JSON, with the full enum name and a window in range, works.
	status, body := post(t, c.url, "/wail.v1.AdminService/CreateTable", "application/json",
		[]byte(`{"name":"strict","failureMode":"FAILURE_MODE_INDEPENDENT","visibilityWindowMs":"5000"}`))
	if status != http.StatusOK || !strings.Contains(body, "FAILURE_MODE_INDEPENDENT") {
		t.Fatalf("valid create: %d %s", status, body)
	}
}

// TestBinaryUnknownFieldsAccepted: binary protobuf with a field this server
// does not know (a newer client) is normal schema evolution.
func TestBinaryUnknownFieldsAccepted(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.Tables = []config.Table{{Name: "t"}} })
	b, err := proto.Marshal(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("from the future"))
	status, body := post(t, c.url, "/wail.v1.ProducerService/Put", "application/proto", b)
	if status != http.StatusOK {
		t.Fatalf("status %d %q", status, body)
	}
	var resp wailv1.PutResponse
	if err := proto.Unmarshal([]byte(body), &resp); err != nil || !resp.Result.Stored {
		t.Fatalf("response %v %+v", err, resp.Result)
	}
}
