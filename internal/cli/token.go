package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/vfs"
)

// tokenFlags locate the tokens: --tokens-file, else the store's catalog
// with --tokens-source catalog or security.auth.tokens_source catalog in
// --config, else security.auth.tokens_file of --config, else tokens.json
// in the data dir.
type tokenFlags struct {
	configFile, dataDir, tokensFile, tokensSource string
}

// tokenPlace is where the tokens are: a file (path) or the catalog of the
// store of cfg.
type tokenPlace struct {
	path string
	cfg  *config.Config // set: in the store's catalog
}

func (f *tokenFlags) place(cmd *cobra.Command) (tokenPlace, error) {
	fl := cmd.Flags()
	if fl.Changed("tokens-file") {
		return tokenPlace{path: f.tokensFile}, nil
	}
	// The flags apply before the file is validated: --data-dir stands for
	// the data_dir of --config, which need not be valid here.
	cfg, err := config.Read(f.configFile)
	if err != nil {
		return tokenPlace{}, err
	}
	if fl.Changed("data-dir") {
		cfg.DataDir = f.dataDir
	}
	if fl.Changed("tokens-source") {
		switch f.tokensSource {
		case config.TokensFromFile, config.TokensFromCatalog:
			cfg.Security.Auth.TokensSource = f.tokensSource
		default:
			return tokenPlace{}, usageErrorf("--tokens-source %q is neither file nor catalog", f.tokensSource)
		}
	}
	if err := cfg.Validate(); err != nil {
		if f.configFile == "" {
			return tokenPlace{}, err
		}
		return tokenPlace{}, fmt.Errorf("config %s: %w", f.configFile, err)
	}
	if cfg.Security.Auth.TokensInCatalog() {
		return tokenPlace{cfg: &cfg}, nil
	}
	if cfg.Security.Auth.TokensFile == "" {
		// A data dir that is not there is no server's: a typo of it put
		// the tokens where no server reads them (and ls listed none).
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
			return tokenPlace{}, fmt.Errorf("data dir %s does not exist: give the server's, with --data-dir (or data_dir in --config), or the tokens file with --tokens-file", cfg.DataDir)
		}
	}
	return tokenPlace{path: cfg.TokensPath()}, nil
}

// openCatalog opens the store of p's configuration: the tokens are edited
// there directly, by compare-and-set, as the servers sharing it read them.
func (p tokenPlace) openCatalog(cmd *cobra.Command) (auth.TokenStore, func() error, error) {
	st, closeStore, err := server.OpenTokenStore(cmd.Context(), *p.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("tokens_source catalog: open the store: %w", err)
	}
	return st, closeStore, nil
}

// read reads the tokens.
func (p tokenPlace) read(cmd *cobra.Command) (*auth.TokenFile, error) {
	if p.cfg == nil {
		return auth.ReadTokenFile(p.path)
	}
	st, closeStore, err := p.openCatalog(cmd)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	tf, _, err := auth.LoadTokens(cmd.Context(), st)
	return tf, err
}

func newTokenCmd(g *globals) *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the API's bearer tokens",
		Long: "Create, list and revoke bearer tokens in the tokens file of the server (with --auth):\n" +
			"the file keeps only a hash of each token; a running server reads it again when it\n" +
			"changes (security.reload_interval). Run these where the server's data dir (or\n" +
			"security.auth.tokens_file) is. With --tokens-source catalog (or\n" +
			"security.auth.tokens_source catalog in --config), they edit the tokens in the store's\n" +
			"catalog instead (with the store's credentials from --config), which every server\n" +
			"sharing the store reads every security.auth.tokens_refresh. Without --tokens-file (or\n" +
			"security.auth.tokens_file), the tokens are tokens.json in the data dir, which must exist:\n" +
			"a missing one is refused (a typo of it put the tokens where no server reads them).\n" +
			"--data-dir and --tokens-source apply to --config before it is validated.",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.configFile, "config", "", "YAML configuration `file` of the server")
	fl.StringVar(&f.dataDir, "data-dir", "", "the server's data directory (overrides data_dir)")
	fl.StringVar(&f.tokensFile, "tokens-file", "", "the tokens file (overrides security.auth.tokens_file)")
	refuseEmpty(fl, "config", "data-dir", "tokens-file") // --data-dir "" put tokens.json at /
	fl.StringVar(&f.tokensSource, "tokens-source", "", tokensSourceUsage+" (overrides security.auth.tokens_source of --config)")
	cmd.AddCommand(newTokenCreateCmd(g, &f), newTokenLsCmd(g, &f), newTokenRevokeCmd(g, &f))
	return cmd
}

func newTokenCreateCmd(g *globals, f *tokenFlags) *cobra.Command {
	var grants []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a token for principal token:NAME and print it (once: only its hash is kept)",
		Long: "Make a bearer token for the principal token:NAME with the grants given, and print it on\n" +
			"stdout: this is the only time it is shown. A grant is PERMISSION:TABLES, the permission\n" +
			"one of produce, read, consume, admin, metrics or *, the tables a name pattern where *\n" +
			"matches any run (produce:orders, consume:orders_*, admin:*).",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			gs, err := auth.ParseGrants(grants)
			if err != nil {
				return usageError{err: err}
			}
			if err := auth.CheckTokenName(args[0]); err != nil {
				return usageError{err: err}
			}
			var tok string
			var e auth.TokenEntry
			err = editTokens(cmd, f, func(tf *auth.TokenFile) error {
				tok, e, err = tf.Create(args[0], gs, time.Now())
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "token %s for token:%s, grants [%s]; it is shown once:\n", e.ID, e.Name, strings.Join(e.Grants, " "))
			fmt.Fprintln(g.stdout, tok)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&grants, "grant", nil, "PERMISSION:TABLES the token allows; repeat for more")
	return cmd
}

func newTokenLsCmd(g *globals, f *tokenFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the tokens: id, name, grants, created, revoked (never the tokens)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.place(cmd)
			if err != nil {
				return err
			}
			tf, err := p.read(cmd)
			if err != nil {
				return err
			}
			return listTokens(g.stdout, tf, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per token (no hash)")
	return cmd
}

func listTokens(w io.Writer, tf *auth.TokenFile, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range tf.Tokens {
			e.SHA256 = ""
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tGRANTS\tCREATED\tREVOKED")
	for _, e := range tf.Tokens {
		revoked := "-"
		if e.Revoked != nil {
			revoked = e.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ID, e.Name, strings.Join(e.Grants, ","), e.Created.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func newTokenRevokeCmd(g *globals, f *tokenFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token by id, or every token of a name; a running server refuses it within security.reload_interval (security.auth.tokens_refresh with tokens in the catalog)",
		Args:  exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			err := editTokens(cmd, f, func(tf *auth.TokenFile) error {
				if n = tf.Revoke(args[0], time.Now()); n == 0 {
					return exitError{code: 1, msg: fmt.Sprintf("no unrevoked token has id or name %q (`wail token ls` lists them)", args[0])}
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "revoked %d token(s) of %s\n", n, args[0])
			return nil
		},
	}
}

// editTokens changes the tokens: in the store's catalog by
// compare-and-set, or in the tokens file under a lock (one edit at a time;
// the server only reads).
func editTokens(cmd *cobra.Command, f *tokenFlags, edit func(*auth.TokenFile) error) error {
	p, err := f.place(cmd)
	if err != nil {
		return err
	}
	if p.cfg != nil {
		st, closeStore, err := p.openCatalog(cmd)
		if err != nil {
			return err
		}
		defer closeStore()
		_, err = auth.EditTokens(cmd.Context(), st, edit)
		return exitErrorOf(err)
	}
	path := p.path
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	lock, err := vfs.Default.Lock(path + ".lock")
	if err != nil {
		return fmt.Errorf("another `wail token` command is changing %s; try again: %w", path, err)
	}
	defer lock.Close()
	tf, err := auth.ReadTokenFile(path)
	if err != nil {
		return err
	}
	if err := edit(tf); err != nil {
		return exitErrorOf(err)
	}
	return tf.Write(path)
}

// exitErrorOf is err, or the exitError it wraps.
func exitErrorOf(err error) error {
	var ee exitError
	if errors.As(err, &ee) {
		return ee
	}
	return err
}
