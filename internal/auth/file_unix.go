//go:build unix

package auth

import (
	"fmt"
	"os"
	"syscall"
)

// inode tells apart a file replaced by a rename with the same size and
// modification time.
func inode(fi os.FileInfo) any {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return nil
}

// checkMode refuses a file of credentials (the tokens file, a JWKS file)
// that users other than its owner may write: whoever writes it makes
// tokens. refused is the error, fix the mode to give it.
func checkMode(path string, fi os.FileInfo, refused error, fix os.FileMode) error {
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %o; run chmod %o %s", refused, path, m, fix, path)
	}
	return nil
}

// SecretModeProblem says what is wrong with the mode of a file holding a
// secret (a TLS private key), and what to run: others may read it, or
// others than its owner may write it. "": nothing (its owner and group
// may read it: a group of services sharing certificates).
func SecretModeProblem(path string, fi os.FileInfo) string {
	m := fi.Mode().Perm()
	if m&0o004 == 0 && m&0o022 == 0 {
		return ""
	}
	who := "others may read it"
	if m&0o004 == 0 {
		who = "others than its owner may write it"
	}
	return fmt.Sprintf("%s has mode %o: %s; run chmod 600 %s (640 if a group must read it)", path, m, who, path)
}
