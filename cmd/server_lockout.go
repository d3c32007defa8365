package cmd

import (
	"errors"
	"flag"
	"time"

	"github.com/tokensmith/tokensmith/server/lockout"
)

// lockoutFlags are the per-user lockout flags of "tokensmith server".
type lockoutFlags struct {
	threshold int
	base, max time.Duration
}

func (l *lockoutFlags) bind(fs *flag.FlagSet) {
	fs.IntVar(&l.threshold, "lockout-threshold", lockout.DefaultThreshold, "Consecutive failed password checks, counted per replica, that lock a user; 0 disables the lockout.")
	fs.DurationVar(&l.base, "lockout-base", lockout.DefaultBase, "Length of a user's first lock; each further lock doubles it.")
	fs.DurationVar(&l.max, "lockout-max", lockout.DefaultMax, "Longest lock.")
}

// policy checks the flags: the defaults allow 15 password checks an hour per
// replica; the flags may not make a single replica allow more than 100 in the
// first hour (ASVS 2.2.1).
func (l *lockoutFlags) policy() (lockout.Policy, error) {
	switch {
	case l.threshold == 0:
		return lockout.Policy{Threshold: -1}, nil
	case l.threshold < 0 || l.threshold > 50:
		return lockout.Policy{}, errors.New("--lockout-threshold must be between 0 (off) and 50")
	case l.base < time.Second || l.max < l.base:
		return lockout.Policy{}, errors.New("--lockout-base must be at least 1s and --lockout-max at least --lockout-base")
	}
	p := lockout.Policy{Threshold: l.threshold, Base: l.base, Max: l.max}
	if n := p.ChecksInFirstHour(); n > 100 {
		return lockout.Policy{}, errors.New("the --lockout-* flags allow more than 100 password checks an hour (ASVS 2.2.1): raise --lockout-base or lower --lockout-threshold")
	}
	return p, nil
}
