package cli

import (
	"bytes"
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

const bytesArgHelp = `KEY and VALUE are bytes, written as:
  text      the argument itself (decoded with --hex or --base64 when given)
  @FILE     the raw contents of FILE (never decoded)
  @-        the raw contents of stdin
  @@text    the literal text "@text"
A KEY is at least one byte; @FILE and @- read at most 64 MiB (no server takes more).`

// kvFlags are the flags shared by put, delete and get.
type kvFlags struct {
	hex, base64, json bool
}

func (f *kvFlags) register(g *globals, cmd *cobra.Command, args, extra string) {
	g.clientFlags(cmd.Flags())
	cmd.Flags().BoolVar(&f.hex, "hex", false, args+" written in hex"+extra)
	cmd.Flags().BoolVar(&f.base64, "base64", false, args+" written in base64"+extra)
	cmd.Flags().BoolVar(&f.json, "json", false, "print the result as JSON")
}

// decodeArgs decodes the KEY (and VALUE) arguments.
func (f *kvFlags) decodeArgs(g *globals, names []string, args []string) ([][]byte, encoding, error) {
	enc, err := parseEncoding(f.hex, f.base64)
	if err != nil {
		return nil, enc, err
	}
	d := newArgDecoder(enc, g.stdin)
	out := make([][]byte, len(args))
	for i, a := range args {
		if out[i], err = d.decode(names[i], a); err != nil {
			return nil, enc, err
		}
		if names[i] == "KEY" && len(out[i]) == 0 { // from @FILE, @- or an empty --hex: the server refuses it
			return nil, enc, usageErrorf("KEY is empty: a key has at least one byte")
		}
	}
	return out, enc, nil
}

// sendFunc sends one write with the decoded byte arguments.
type sendFunc func(ctx context.Context, cl *clients, table string, b [][]byte) (*wailv1.WriteResult, error)

// runWrite is the body of put and delete: decode the byte arguments, send,
// print the result.
func runWrite(g *globals, f *kvFlags, names []string, send sendFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		b, _, err := f.decodeArgs(g, names, args[1:])
		if err != nil {
			return err
		}
		cl, err := g.clients()
		if err != nil {
			return err
		}
		ctx, cancel := g.unary(cmd.Context())
		defer cancel()
		res, err := send(ctx, cl, args[0], b)
		if err != nil {
			return err
		}
		return printWriteResult(g, res, f.json)
	}
}

func newPutCmd(g *globals) *cobra.Command {
	var (
		f         kvFlags
		valueJSON bool
	)
	cmd := &cobra.Command{
		Use:   "put TABLE KEY VALUE",
		Short: "Write the value of a key",
		Long: "Write the value of a key and print the result.\n\n" + bytesArgHelp + "\n\n" +
			"With --value-json, VALUE is the Protobuf JSON of a typed table's value message; the\n" +
			"server converts it to Protobuf binary.",
		Args: exactArgs("TABLE", "KEY", "VALUE"),
		RunE: runWrite(g, &f, []string{"KEY", "VALUE"}, func(ctx context.Context, cl *clients, table string, b [][]byte) (*wailv1.WriteResult, error) {
			req := &wailv1.PutRequest{Table: table, Key: b[0], Value: b[1]}
			if valueJSON {
				req.Value, req.ValueJson = nil, string(b[1])
			}
			resp, err := cl.producer.Put(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, err
			}
			return resp.Msg.GetResult(), nil
		}),
	}
	f.register(g, cmd, "KEY and VALUE", "")
	cmd.Flags().BoolVar(&valueJSON, "value-json", false, "VALUE is the Protobuf JSON of the table's value message (typed tables)")
	return cmd
}

func newDeleteCmd(g *globals) *cobra.Command {
	var f kvFlags
	cmd := &cobra.Command{
		Use:   "delete TABLE KEY",
		Short: "Delete a key (the store keeps a versioned tombstone)",
		Long:  "Delete a key and print the result.\n\n" + bytesArgHelp,
		Args:  exactArgs("TABLE", "KEY"),
		RunE: runWrite(g, &f, []string{"KEY"}, func(ctx context.Context, cl *clients, table string, b [][]byte) (*wailv1.WriteResult, error) {
			resp, err := cl.producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: table, Key: b[0]}))
			if err != nil {
				return nil, err
			}
			return resp.Msg.GetResult(), nil
		}),
	}
	f.register(g, cmd, "KEY", "")
	return cmd
}

func newGetCmd(g *globals) *cobra.Command {
	var (
		f         kvFlags
		valueJSON bool
	)
	cmd := &cobra.Command{
		Use:   "get TABLE KEY",
		Short: "Read the value of a key",
		Long: "Read the value of a key and print it raw (or encoded with --hex / --base64,\n" +
			"or as JSON with the version). A missing key exits with code 1.\n\n" + bytesArgHelp,
		Args: exactArgs("TABLE", "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, enc, err := f.decodeArgs(g, []string{"KEY"}, args[1:])
			if err != nil {
				return err
			}
			cl, err := g.clients()
			if err != nil {
				return err
			}
			ctx, cancel := g.unary(cmd.Context())
			defer cancel()
			resp, err := cl.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: args[0], Key: b[0], ValueJson: valueJSON}))
			if err != nil {
				return err
			}
			if valueJSON && resp.Msg.GetFound() && !f.json {
				fmt.Fprintln(g.stdout, resp.Msg.GetValueJson())
				return nil
			}
			return printGet(g, args[0], b[0], resp.Msg, enc, f.json)
		},
	}
	f.register(g, cmd, "KEY", "; print the value in it too")
	cmd.Flags().BoolVar(&valueJSON, "value-json", false, "print a typed table's value as its message's Protobuf JSON")
	return cmd
}

// printWriteResult prints one line (or JSON); a failed mutation is an error.
func printWriteResult(g *globals, r *wailv1.WriteResult, asJSON bool) error {
	if r == nil {
		return fmt.Errorf("the server returned no result")
	}
	if asJSON {
		if err := writeProtoJSON(g.stdout, r); err != nil {
			return err
		}
	} else if r.GetError() == nil {
		fmt.Fprintf(g.stdout, "version=%d intent_logged=%t stored=%t superseded=%t\n",
			r.GetVersion(), r.GetIntentLogged(), r.GetStored(), r.GetSuperseded())
	}
	if e := r.GetError(); e != nil {
		return codeError{code: e.GetCode(), msg: e.GetMessage()}
	}
	return nil
}

// printGet prints the value; a missing or deleted key is exit code 1.
func printGet(g *globals, table string, key []byte, r *wailv1.GetResponse, enc encoding, asJSON bool) error {
	switch {
	case asJSON:
		if err := writeProtoJSON(g.stdout, r); err != nil {
			return err
		}
	case !r.GetFound():
	case enc == encText:
		v := r.GetValue()
		if isTerminal(g.stdout) && !bytes.HasSuffix(v, []byte("\n")) {
			v = append(v[:len(v):len(v)], '\n') // keep the prompt off the value
		}
		if _, err := g.stdout.Write(v); err != nil {
			return err
		}
	default:
		fmt.Fprintln(g.stdout, encodeText(enc, r.GetValue()))
	}
	if r.GetFound() {
		return nil
	}
	msg := fmt.Sprintf("not found: key %s in table %s", displayBytes(key, 100), table)
	if r.GetDeleted() {
		msg += fmt.Sprintf(" (deleted at version %d)", r.GetVersion())
	}
	return exitError{code: 1, msg: msg}
}
