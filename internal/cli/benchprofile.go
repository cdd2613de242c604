package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"

	"github.com/spf13/pflag"
)

// profileFlags are bench's Go profiles of the whole process (the
// in-process server and the load generator together): what to look at
// when wail stays below the floor.
type profileFlags struct {
	cpu, mutex, block, mem, trace string
}

func (p *profileFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&p.cpu, "cpuprofile", "", "write a CPU profile of the bench process to `FILE` (go tool pprof)")
	fl.StringVar(&p.mutex, "mutexprofile", "", "write a mutex contention profile (every 5th event sampled) to `FILE`")
	fl.StringVar(&p.block, "blockprofile", "", "write a blocking profile (events of 10µs or more) to `FILE`")
	fl.StringVar(&p.trace, "trace", "", "write an execution trace of the bench process to `FILE` (go tool trace: which goroutines ran, waited or were runnable, e.g. a stage that runs on one core while the others idle)")
	fl.StringVar(&p.mem, "memprofile", "", "write an allocation profile (what the process allocated from its start to the end of the bench, sampled as Go does) to `FILE`")
}

// start begins the profiles asked for; stop ends them and writes the
// files.
func (p *profileFlags) start() (stop func() error, err error) {
	var cpu *os.File
	if p.cpu != "" {
		if cpu, err = os.Create(p.cpu); err != nil {
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err = pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
	}
	var tr *os.File
	if p.trace != "" {
		if tr, err = os.Create(p.trace); err == nil {
			if err = trace.Start(tr); err != nil {
				tr.Close()
			}
		}
		if err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			return nil, fmt.Errorf("--trace: %w", err)
		}
	}
	if p.mutex != "" {
		runtime.SetMutexProfileFraction(5)
	}
	if p.block != "" {
		runtime.SetBlockProfileRate(10_000) // ns
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			if err := tr.Close(); err != nil {
				errs = append(errs, fmt.Errorf("--trace: %w", err))
			}
		}
		if p.mutex != "" {
			errs = append(errs, writeProfile("mutex", p.mutex))
			runtime.SetMutexProfileFraction(0)
		}
		if p.block != "" {
			errs = append(errs, writeProfile("block", p.block))
			runtime.SetBlockProfileRate(0)
		}
		if p.mem != "" {
			errs = append(errs, writeProfile("mem", p.mem))
		}
		return errors.Join(errs...)
	}, nil
}

// writeProfile writes the profile of --<name>profile (mem: Go's "allocs").
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--%sprofile: %w", name, err)
	}
	lookup := name
	if name == "mem" {
		lookup = "allocs"
	}
	if err := pprof.Lookup(lookup).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("--%sprofile: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--%sprofile: %w", name, err)
	}
	return nil
}
