package versus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// ack is the outcome of one write of a batch.
type ack struct {
	err string // error kind; empty when the write was applied
	// token is the state the write produced, in the pipeline's per-key
	// order (see Event.Token).
	token uint64
	// noEvent: the write changed nothing, so no event is due (a Debezium
	// delete of a missing row).
	noEvent bool
}

// pipeline is one CDC pipeline under test.
type pipeline interface {
	// Name is "wail" or "debezium".
	Name() string
	// Topic is the Kafka topic its events arrive on.
	Topic() string
	// Decode turns a record of Topic into an event.
	Decode() Decoder
	// Write applies a batch of mutations of one table and answers each.
	Write(ctx context.Context, muts []*wailv1.Mutation) ([]ack, error)
	// PID is the pipeline's own process (for /proc).
	PID() int
	// Settings describes how it runs, for the report.
	Settings() map[string]string
	// Close stops the process and removes the tables, slot, publication and
	// topics it used.
	Close(ctx context.Context) error
}

// child is a process the bench started, in its own process group.
type child struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// startChild starts name args with extra environment, its output appended
// to logPath.
func startChild(logPath string, env []string, name string, args ...string) (*child, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1), log: lf}
	go func() { c.done <- cmd.Wait() }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process ended (and how), without waiting.
func (c *child) exited() (bool, error) {
	select {
	case err := <-c.done:
		c.done <- err
		return true, err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process and waits up to grace, then kills its
// whole process group.
func (c *child) stop(grace time.Duration) error {
	defer c.log.Close()
	if done, _ := c.exited(); done {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
		return errors.New("did not stop on SIGTERM within " + grace.String() + ": killed")
	}
}
