package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TokenSource returns the bearer token a request carries. It is called for
// every request and every stream's opening, so it should cache (an OIDC
// client-credentials source, say, refreshing before expiry); its error
// fails the request unsent.
type TokenSource func(ctx context.Context) (string, error)

// tokenFileCheck is how often a token file is looked at again (its
// modification time and size).
const tokenFileCheck = time.Second

// tokenFile reads a bearer token from a file, and again whenever the
// file's modification time or size changed (looked at once a second at
// most): a JWT rotated by an agent, a Kubernetes projected service
// account token (replaced by a symlink swap, which os.Stat follows). A
// file that cannot be read, or holds no token, after one was read keeps
// the last token (a rotation writing the file in place may be seen half
// done); one that never could fails the request.
type tokenFile struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time // when the file was last looked at
	mod     time.Time // its modification time and size when last read
	size    int64
	token   string
	err     error // the last read's, while no token was ever read
}

func newTokenFile(path string, now func() time.Time) (*tokenFile, error) {
	f := &tokenFile{path: path, now: now}
	if _, err := f.get(); err != nil {
		return nil, err
	}
	return f, nil
}

// get returns the token, reading the file again if it changed.
func (f *tokenFile) get() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.token != "" && now.Sub(f.checked) < tokenFileCheck {
		return f.token, nil
	}
	f.checked = now
	fi, err := os.Stat(f.path)
	if err == nil && f.token != "" && fi.ModTime().Equal(f.mod) && fi.Size() == f.size {
		return f.token, nil
	}
	if err == nil {
		var b []byte
		if b, err = os.ReadFile(f.path); err == nil {
			tok := strings.TrimSpace(string(b))
			switch err = checkToken(tok); {
			case tok == "":
				err = errors.New("it holds no token")
			case err == nil:
				f.token, f.mod, f.size, f.err = tok, fi.ModTime(), fi.Size(), nil
				return tok, nil
			}
		}
	}
	if f.token != "" {
		return f.token, nil // the last one read, until the file reads again
	}
	f.err = fmt.Errorf("client: token file %s: %w", f.path, err)
	return "", f.err
}

// tokenSource is the source of o's token: Token, TokenFile or
// TokenSource (at most one; nil: none).
func (o Options) tokenSource() (TokenSource, error) {
	n := 0
	for _, set := range []bool{o.Token != "", o.TokenFile != "", o.TokenSource != nil} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("client: set one of Token, TokenFile and TokenSource")
	case o.Token != "":
		tok := strings.TrimSpace(o.Token) // as a file's: a secret's trailing line break
		if err := checkToken(tok); err != nil {
			return nil, fmt.Errorf("client: Token (%s): %w", EnvToken, err)
		}
		return func(context.Context) (string, error) { return tok, nil }, nil
	case o.TokenFile != "":
		f, err := newTokenFile(o.TokenFile, time.Now)
		if err != nil {
			return nil, err
		}
		return func(context.Context) (string, error) { return f.get() }, nil
	}
	return o.TokenSource, nil
}

// errTokenMalformed: a token with a space, line break or control character
// inside, which an Authorization header cannot carry (two tokens, or a
// token and a comment, in one file).
var errTokenMalformed = errors.New("a token has no space, line break or control character inside")

// checkToken refuses a token an Authorization header cannot carry.
func checkToken(tok string) error {
	if strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("it holds more than a token: %w", errTokenMalformed)
	}
	return nil
}
