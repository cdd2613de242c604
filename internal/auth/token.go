package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/vfs"
)

// A bearer token is "wail_" + 16 hex digits (its id, which is not secret
// and names it in `wail token ls`) + "_" + 43 base64url characters (256
// random bits). Only its SHA-256 is stored: a high-entropy secret needs no
// slow hash, and a stolen tokens file does not give the tokens away.
const (
	tokenPrefix    = "wail_"
	tokenIDLen     = 16
	tokenSecretLen = 43
	// TokenLen is the length of a token.
	TokenLen = len(tokenPrefix) + tokenIDLen + 1 + tokenSecretLen
)

// Errors of token checks; package api answers Unauthenticated on each.
var (
	ErrMalformedToken = errors.New("malformed bearer token")
	ErrUnknownToken   = errors.New("unknown bearer token")
	ErrRevokedToken   = errors.New("revoked bearer token")
	ErrBadTokenName   = errors.New("bad token name")
	// ErrTokenFileMode is a tokens file that others than its owner may write.
	ErrTokenFileMode = errors.New("the tokens file is writable by others than its owner")
)

// ParseToken checks a token's form and returns its id.
func ParseToken(tok string) (id string, err error) {
	if len(tok) != TokenLen || !strings.HasPrefix(tok, tokenPrefix) || tok[len(tokenPrefix)+tokenIDLen] != '_' {
		return "", fmt.Errorf("%w: a wail token is %s + 16 hex digits + _ + 43 characters", ErrMalformedToken, tokenPrefix)
	}
	id = tok[len(tokenPrefix) : len(tokenPrefix)+tokenIDLen]
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", fmt.Errorf("%w: its id is not 16 lower-case hex digits", ErrMalformedToken)
	}
	secret := tok[len(tokenPrefix)+tokenIDLen+1:]
	if b, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(b) != 32 {
		return "", fmt.Errorf("%w: its secret is not 43 base64url characters", ErrMalformedToken)
	}
	return id, nil
}

// hashToken is the stored form of a token.
func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CheckTokenName: 1..64 of a-z A-Z 0-9 . _ -.
func CheckTokenName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return fmt.Errorf("%w %q: use 1..64 of a-z A-Z 0-9 . _ -", ErrBadTokenName, name)
	}
	return nil
}

// TokenEntry is a token as the tokens file keeps it.
type TokenEntry struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	// Grants are what the token may do (ParseGrant's syntax), besides the
	// grants configured for its principal.
	Grants  []string   `json:"grants"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Principal is the token's principal.
func (e TokenEntry) Principal() Principal { return Principal{Kind: KindToken, Name: e.Name} }

// TokenFile is the tokens file: JSON, written whole by a rename.
type TokenFile struct {
	Tokens []TokenEntry   `json:"tokens"`
	byID   map[string]int // index into Tokens, built by ParseTokenFile
}

// ReadTokenFile reads path; a missing file is an empty one. A file that
// others than its owner may write is refused (ErrTokenFileMode).
func ReadTokenFile(path string) (*TokenFile, error) {
	if fi, err := os.Stat(path); err == nil {
		if err := checkMode(path, fi, ErrTokenFileMode, 0o600); err != nil {
			return nil, fmt.Errorf("tokens file: %w", err)
		}
	}
	return ReadTokenFileFS(vfs.Default, path)
}

// ReadTokenFileFS is ReadTokenFile on fsys.
func ReadTokenFileFS(fsys vfs.FS, path string) (*TokenFile, error) {
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, os.ErrNotExist) {
		return &TokenFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return ParseTokenFile(b)
}

// ParseTokenFile decodes and checks a tokens file.
func ParseTokenFile(b []byte) (*TokenFile, error) {
	var f TokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	seen := map[string]bool{}
	for i, e := range f.Tokens {
		if len(e.ID) != tokenIDLen || seen[e.ID] {
			return nil, fmt.Errorf("tokens file: token %d: id %q is not 16 hex digits, or repeats", i, e.ID)
		}
		seen[e.ID] = true
		if _, err := hex.DecodeString(e.SHA256); err != nil || len(e.SHA256) != 64 {
			return nil, fmt.Errorf("tokens file: token %s: sha256 is not 64 hex digits", e.ID)
		}
		if err := CheckTokenName(e.Name); err != nil {
			return nil, fmt.Errorf("tokens file: token %s: %w", e.ID, err)
		}
		if _, err := ParseGrants(e.Grants); err != nil {
			return nil, fmt.Errorf("tokens file: token %s: %w", e.ID, err)
		}
	}
	f.byID = make(map[string]int, len(f.Tokens))
	for i, e := range f.Tokens {
		f.byID[e.ID] = i
	}
	return &f, nil
}

// Write replaces path with f (0600, by a rename: a reader sees the old
// file or the new one, never half), durably: after it returns, a power
// loss keeps the new file.
func (f *TokenFile) Write(path string) error { return f.WriteFS(vfs.Default, path) }

// WriteFS is Write on fsys.
func (f *TokenFile) WriteFS(fsys vfs.FS, path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), ".tokens-"+rand.Text())
	t, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	defer fsys.Remove(tmp)
	if _, err := t.WriteAt(append(b, '\n'), 0); err != nil {
		t.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := t.Sync(); err != nil {
		t.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := t.Close(); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	// The rename is durable once the directory is: else a power loss could
	// bring back the old file, and a revoked token with it.
	if err := fsys.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	return nil
}

// Create adds a token named name with grants and returns it: the only
// time it is seen whole.
func (f *TokenFile) Create(name string, grants []Grant, now time.Time) (string, TokenEntry, error) {
	if err := CheckTokenName(name); err != nil {
		return "", TokenEntry{}, err
	}
	var id [8]byte
	var secret [32]byte
	for {
		_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
		if !slices.ContainsFunc(f.Tokens, func(e TokenEntry) bool { return e.ID == hex.EncodeToString(id[:]) }) {
			break
		}
	}
	_, _ = rand.Read(secret[:])
	tok := tokenPrefix + hex.EncodeToString(id[:]) + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	e := TokenEntry{ID: hex.EncodeToString(id[:]), Name: name, SHA256: hashToken(tok), Created: now.UTC().Truncate(time.Second)}
	for _, g := range grants {
		e.Grants = append(e.Grants, g.String())
	}
	f.Tokens = append(f.Tokens, e)
	if f.byID != nil {
		f.byID[e.ID] = len(f.Tokens) - 1
	}
	return tok, e, nil
}

// Revoke revokes the tokens whose id or name is idOrName and returns how
// many it revoked (already revoked ones do not count).
func (f *TokenFile) Revoke(idOrName string, now time.Time) int {
	n := 0
	for i := range f.Tokens {
		e := &f.Tokens[i]
		if (e.ID == idOrName || e.Name == idOrName) && e.Revoked == nil {
			t := now.UTC().Truncate(time.Second)
			e.Revoked = &t
			n++
		}
	}
	return n
}

// Verify returns the entry of tok, or ErrMalformedToken, ErrUnknownToken,
// ErrRevokedToken.
func (f *TokenFile) Verify(tok string) (TokenEntry, error) {
	id, err := ParseToken(tok)
	if err != nil {
		return TokenEntry{}, err
	}
	i, ok := f.byID[id]
	if f.byID == nil { // not read from a file: scan
		i = slices.IndexFunc(f.Tokens, func(e TokenEntry) bool { return e.ID == id })
		ok = i >= 0
	}
	if ok {
		e := f.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(e.SHA256), []byte(hashToken(tok))) != 1 {
			return TokenEntry{}, ErrUnknownToken
		}
		if e.Revoked != nil {
			return TokenEntry{}, fmt.Errorf("%w (token %s, %s, revoked %s)", ErrRevokedToken, e.ID, e.Name, e.Revoked.Format(time.RFC3339))
		}
		return e, nil
	}
	return TokenEntry{}, ErrUnknownToken
}
