package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/schema"
)

func newSchemaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Register, check, list, show and compare Protobuf schemas in the schema registry",
		Long: "The schema registry of a wail server (http://<addr>/registry, the Confluent Schema\n" +
			"Registry API) holds Protobuf schemas by subject (<topic>-key, <topic>-value). register\n" +
			"adds a version if the subject's compatibility level allows it; check says whether it\n" +
			"would; diff lists every difference between two versions, or a file and a version,\n" +
			"with the Confluent registry's rules. An import is passed as --ref PATH=SUBJECT:VERSION.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	g.clientFlags(cmd.PersistentFlags())
	cmd.AddCommand(newSchemaRegisterCmd(g), newSchemaCheckCmd(g), newSchemaLsCmd(g), newSchemaShowCmd(g), newSchemaDiffCmd(g))
	return cmd
}

// registry returns a Confluent registry client for --addr, over the
// connection flags' HTTP client (TLS, token).
func (g *globals) registry() (*sr.Client, error) {
	cl, err := g.clients()
	if err != nil {
		return nil, err
	}
	return sr.NewClient(sr.URLs(cl.url+config.SchemaRegistryPath), sr.HTTPClient(cl.http), sr.UserAgent("wail-cli"))
}

// registryCall bounds one registry call by --timeout.
func registryCall(cmd *cobra.Command, g *globals, fn func(context.Context, *sr.Client) error) error {
	cl, err := g.registry()
	if err != nil {
		return err
	}
	ctx, cancel := g.unary(cmd.Context())
	defer cancel()
	return registryError(fn(ctx, cl))
}

// registryError turns a registry refusal into its message and code, one
// reason a line.
func registryError(err error) error {
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	// Printable (its details get a line each below); without a Confluent
	// error body (the API's 401, 403 or 429, or whatever answered), the
	// body itself.
	msg := oneLine(re.Message, 0)
	if re.Message == "" {
		msg = oneLine(string(re.Raw), serverMessageLimit)
	}
	if i := strings.Index(msg, "details: ["); i >= 0 && strings.HasSuffix(msg, "]") {
		msg = msg[:i] + "details:\n  " + strings.Join(splitReasons(msg[i+len("details: ["):len(msg)-1]), "\n  ")
	}
	return fmt.Errorf("%s (HTTP %d, error code %d)", msg, re.StatusCode, re.ErrorCode)
}

// splitReasons splits the registry's list of reasons ("{...}, {...}").
func splitReasons(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '{':
			if depth == 0 {
				start = i
			}
			depth++
		case '}':
			if depth--; depth == 0 {
				out = append(out, s[start:i+1])
			}
		}
	}
	if len(out) == 0 {
		return []string{s}
	}
	return out
}

// refsFlag collects --ref PATH=SUBJECT:VERSION.
func refsFlag(cmd *cobra.Command, refs *[]string) {
	cmd.Flags().StringArrayVar(refs, "ref", nil, "an import of the schema: PATH=SUBJECT:VERSION (the import path, the subject version holding it; VERSION may be latest); repeatable")
}

func parseRefs(refs []string) ([]sr.SchemaReference, error) {
	var out []sr.SchemaReference
	for _, r := range refs {
		path, sv, ok1 := strings.Cut(r, "=")
		subject, v, ok2 := strings.Cut(sv, ":")
		version := -1
		var err error
		if v != "latest" {
			version, err = strconv.Atoi(v)
		}
		if !ok1 || !ok2 || path == "" || subject == "" || err != nil || version == 0 || version < -1 {
			return nil, usageErrorf("--ref %q: use PATH=SUBJECT:VERSION, e.g. shop/money.proto=shop.money:1", r)
		}
		out = append(out, sr.SchemaReference{Name: path, Subject: subject, Version: version})
	}
	return out, nil
}

// readSchema reads a .proto file and its --ref flags into a request.
func readSchema(file string, refs []string) (sr.Schema, error) {
	rs, err := parseRefs(refs)
	if err != nil {
		return sr.Schema{}, err
	}
	b, err := readProto(file)
	if err != nil {
		return sr.Schema{}, err
	}
	return sr.Schema{Schema: string(b), Type: sr.TypeProtobuf, References: rs}, nil
}

func newSchemaRegisterCmd(g *globals) *cobra.Command {
	var refs []string
	cmd := &cobra.Command{
		Use:   "register SUBJECT FILE.proto",
		Short: "Register a schema as the subject's next version (or find it registered)",
		Args:  exactArgs("SUBJECT", "FILE.proto"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := readSchema(args[1], refs)
			if err != nil {
				return err
			}
			return registryCall(cmd, g, func(ctx context.Context, cl *sr.Client) error {
				ss, err := cl.CreateSchema(ctx, args[0], s)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s version %d: schema id %d\n", ss.Subject, ss.Version, ss.ID)
				return nil
			})
		},
	}
	refsFlag(cmd, &refs)
	return cmd
}

func newSchemaCheckCmd(g *globals) *cobra.Command {
	var (
		refs    []string
		version string
	)
	cmd := &cobra.Command{
		Use:   "check SUBJECT FILE.proto",
		Short: "Say whether a schema may be registered under the subject, and why not (exit 1)",
		Args:  exactArgs("SUBJECT", "FILE.proto"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := -2 // what registering checks: the subject's level
			if version != "" {
				var e error
				if v, e = versionArg(version); e != nil {
					return e
				}
			}
			s, err := readSchema(args[1], refs)
			if err != nil {
				return err
			}
			return registryCall(cmd, g, func(ctx context.Context, cl *sr.Client) error {
				res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), args[0], v, s)
				if err != nil {
					return err
				}
				if res.Is {
					fmt.Fprintf(g.stdout, "compatible with %s\n", args[0])
					return nil
				}
				fmt.Fprintf(g.stdout, "incompatible with %s:\n", args[0])
				for _, m := range res.Messages {
					fmt.Fprintf(g.stdout, "  %s\n", m)
				}
				return exitError{code: 1}
			})
		},
	}
	refsFlag(cmd, &refs)
	cmd.Flags().StringVar(&version, "version", "", "check against this version only (a number or latest); default: what registering checks (the subject's level)")
	return cmd
}

// versionArg reads a version: a positive number or latest (-1).
func versionArg(s string) (int, error) {
	if s == "latest" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, usageErrorf("version %q: use a positive number or latest", s)
	}
	return v, nil
}

func newSchemaLsCmd(g *globals) *cobra.Command {
	var deleted bool
	cmd := &cobra.Command{
		Use:     "ls [PREFIX]",
		Aliases: []string{"list"},
		Short:   "List subjects (starting with PREFIX) with their latest version, schema id and level",
		Args:    rangeArgs(0, "PREFIX"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctxParams := []sr.Param{}
			if len(args) == 1 {
				ctxParams = append(ctxParams, sr.SubjectPrefix(args[0]))
			}
			if deleted {
				ctxParams = append(ctxParams, sr.ShowDeleted)
			}
			return registryCall(cmd, g, func(ctx context.Context, cl *sr.Client) error {
				ctx = sr.WithParams(ctx, ctxParams...)
				subjects, err := cl.Subjects(ctx)
				if err != nil {
					return err
				}
				levels := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subjects...)
				w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SUBJECT\tVERSIONS\tLATEST\tID\tCOMPATIBILITY")
				for i, s := range subjects {
					vs, err := cl.SubjectVersions(ctx, s)
					if err != nil {
						return err
					}
					latest, err := cl.SchemaByVersion(ctx, s, vs[len(vs)-1])
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", s, len(vs), latest.Version, latest.ID, levels[i].Level)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "include soft-deleted subjects and versions")
	return cmd
}

func newSchemaShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SUBJECT [VERSION]",
		Short: "Print a version's schema text (default: the latest)",
		Args:  rangeArgs(1, "SUBJECT", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := -1
			if len(args) == 2 {
				var err error
				if v, err = versionArg(args[1]); err != nil {
					return err
				}
			}
			return registryCall(cmd, g, func(ctx context.Context, cl *sr.Client) error {
				ss, err := cl.SchemaByVersion(ctx, args[0], v)
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(g.stdout).Encode(ss)
				}
				fmt.Fprintf(g.stdout, "// subject %s version %d, schema id %d", ss.Subject, ss.Version, ss.ID)
				for _, r := range ss.References {
					fmt.Fprintf(g.stdout, "; imports %s from %s version %d", r.Name, r.Subject, r.Version)
				}
				fmt.Fprintf(g.stdout, "\n%s", ss.Schema.Schema)
				if !strings.HasSuffix(ss.Schema.Schema, "\n") {
					fmt.Fprintln(g.stdout)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the registry's JSON (subject, version, id, schema, references)")
	return cmd
}

func newSchemaDiffCmd(g *globals) *cobra.Command {
	var refs []string
	cmd := &cobra.Command{
		Use:   "diff SUBJECT OLD [NEW]",
		Short: "List the differences between two versions, or a version and a file, and which break readers",
		Long: "OLD and NEW are versions (a number or latest) or .proto files (their imports from --ref);\n" +
			"NEW defaults to latest. Each difference is printed with its Confluent type and path and\n" +
			"whether a reader on NEW still reads what OLD wrote (backward); exit 1 if any does not.",
		Args: rangeArgs(2, "SUBJECT", "OLD", "NEW"),
		RunE: func(cmd *cobra.Command, args []string) error {
			newArg := "latest"
			if len(args) == 3 {
				newArg = args[2]
			}
			rs, err := parseRefs(refs)
			if err != nil {
				return err
			}
			return registryCall(cmd, g, func(ctx context.Context, cl *sr.Client) error {
				old, err := loadSchema(ctx, cl, args[0], args[1], rs)
				if err != nil {
					return err
				}
				upd, err := loadSchema(ctx, cl, args[0], newArg, rs)
				if err != nil {
					return err
				}
				diffs := schema.Diff(old, upd)
				if len(diffs) == 0 {
					fmt.Fprintln(g.stdout, "no differences")
					return nil
				}
				w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "DIFFERENCE\tPATH\tBACKWARD\tDETAIL")
				breaking := 0
				for _, d := range diffs {
					verdict := "compatible"
					if !d.Type.Compatible() {
						verdict = "BREAKS"
						breaking++
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.Type, d.Path, verdict, d.Detail)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				if breaking > 0 {
					return exitError{code: 1, msg: fmt.Sprintf("%d of %d differences break readers of %s on %s", breaking, len(diffs), args[1], newArg)}
				}
				return nil
			})
		},
	}
	refsFlag(cmd, &refs)
	return cmd
}

// loadSchema compiles a version of subject, or a .proto file with refs,
// fetching the imports from the registry.
func loadSchema(ctx context.Context, cl *sr.Client, subject, arg string, refs []sr.SchemaReference) (*schema.Schema, error) {
	var text string
	if strings.HasSuffix(arg, ".proto") {
		b, err := readProto(arg)
		if err != nil {
			return nil, err
		}
		text = string(b)
	} else {
		v, err := versionArg(arg)
		if err != nil {
			return nil, err
		}
		ss, err := cl.SchemaByVersion(ctx, subject, v)
		if err != nil {
			return nil, err
		}
		text, refs = ss.Schema.Schema, ss.References
	}
	var imports []schema.File
	seen := map[string]bool{}
	var walk func([]sr.SchemaReference) error
	walk = func(refs []sr.SchemaReference) error {
		for _, r := range refs {
			if seen[r.Name] {
				continue
			}
			seen[r.Name] = true
			ss, err := cl.SchemaByVersion(ctx, r.Subject, r.Version)
			if err != nil {
				return fmt.Errorf("import %s (%s version %d): %w", r.Name, r.Subject, r.Version, err)
			}
			imports = append(imports, schema.File{Path: r.Name, Source: ss.Schema.Schema, Origin: fmt.Sprintf("%s/%d", r.Subject, ss.Version)})
			if err := walk(ss.References); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(refs); err != nil {
		return nil, err
	}
	s, err := schema.Compile(ctx, schema.File{Source: text}, imports, schema.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	return s, nil
}

// maxProtoBytes bounds a .proto file read: a device or a pipe that never
// ends grew until memory ran out.
const maxProtoBytes = 16 << 20

// readProto reads a .proto file, at most maxProtoBytes, which must be
// UTF-8: the registry's JSON replaced each other byte with U+FFFD (the
// schema registered was not the file), and a typed table's failed as
// "internal: marshal message". Its errors are usage errors.
func readProto(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProtoBytes+1))
	switch {
	case err != nil:
		return nil, usageErrorf("%s: %v", path, err)
	case len(b) > maxProtoBytes:
		return nil, usageErrorf("%s: larger than %d MiB: is it a .proto file?", path, maxProtoBytes>>20)
	}
	if at := config.InvalidUTF8(b); at != "" {
		return nil, usageErrorf("%s: %s: save the file as UTF-8", path, at)
	}
	return b, nil
}
