package xfr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"bulwark/internal/atomicfile"

	"github.com/miekg/dns"
)

// Bounds of the refresh and retry intervals taken from a zone's SOA
// record, so that a primary with a refresh of 0 cannot make Bulwark query
// it in a loop, and one of years cannot stop the checks.
const (
	minInterval = 10 * time.Second
	maxInterval = 24 * time.Hour
	// retryWithoutCopy is the retry interval before any copy, when no SOA
	// record gives one.
	retryWithoutCopy = 30 * time.Second
)

// Config sets up a Secondary.
type Config struct {
	// List is the name of the policy list, for logs.
	List string
	// Zone is the zone name, fully qualified, in lower case.
	Zone string
	// Primaries are tried in order.
	Primaries []netip.AddrPort
	// AllowNotify are prefixes besides the primaries' addresses whose
	// NOTIFY messages are accepted.
	AllowNotify []netip.Prefix
	// Key signs every exchange when not nil.
	Key *Key
	// File is the path of the copy.
	File string
	// Loaded is called after each new copy is written, to load it.
	Loaded func()
	// Dialer connects to the primaries; nil means a net.Dialer.
	Dialer Dialer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// State is the state of a zone copy, for operators.
type State struct {
	Zone string `json:"zone"`
	// Serial is the SOA serial of the copy; valid when HasCopy is set.
	Serial  uint32 `json:"serial"`
	HasCopy bool   `json:"has_copy"`
	// Transfer is the type of the last transfer: AXFR, IXFR or
	// AXFR-style IXFR.
	Transfer     string    `json:"last_transfer_type,omitempty"`
	LastTransfer time.Time `json:"last_transfer,omitzero"`
	// Primary is the primary the copy was last received from.
	Primary string `json:"primary,omitempty"`
	// Records counts the records of the last copy received, SOA
	// included; 0 before the first transfer since the start.
	Records int `json:"records"`
	// LastRefresh is when a primary last confirmed the copy's serial or
	// sent a newer version.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	NextRefresh time.Time `json:"next_refresh,omitzero"`
	// Expires is LastRefresh plus the SOA expire timer. Past it the copy
	// is still served, with Expired set.
	Expires time.Time `json:"expires,omitzero"`
	Expired bool      `json:"expired"`
	// Error is the failure of the last refresh, "" after a success.
	Error       string    `json:"error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// NotifiesAccepted and NotifiesRefused count NOTIFY messages for
	// the zone.
	NotifiesAccepted uint64 `json:"notifies_accepted"`
	NotifiesRefused  uint64 `json:"notifies_refused"`
}

// Secondary keeps the copy of one zone up to date. It is safe for
// concurrent use.
type Secondary struct {
	cfg    Config
	client *client
	log    *slog.Logger
	notify chan struct{}

	mu    sync.Mutex
	copy  *Copy // nil before the first copy
	state State
}

// NewSecondary returns a Secondary for cfg. It reads the copy left in
// cfg.File by an earlier run, so that the first refresh can ask for an
// IXFR; a missing or foreign file means the first transfer is an AXFR.
func NewSecondary(cfg Config, log *slog.Logger) *Secondary {
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{Timeout: queryTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Loaded == nil {
		cfg.Loaded = func() {}
	}
	s := &Secondary{
		cfg:    cfg,
		client: &client{zone: cfg.Zone, key: cfg.Key, dialer: cfg.Dialer, now: cfg.Now},
		log:    log.With("list", cfg.List, "zone", cfg.Zone),
		notify: make(chan struct{}, 1),
		state:  State{Zone: cfg.Zone},
	}
	if removed, err := atomicfile.CleanTemp(cfg.File); err != nil {
		s.log.Warn("cannot remove unfinished copies of an earlier run", "file", cfg.File, "error", err)
	} else if len(removed) > 0 {
		s.log.Info("removed unfinished copies of an earlier run", "file", cfg.File, "count", len(removed))
	}
	cp, err := ReadCopy(cfg.File, cfg.Zone)
	switch {
	case err == nil:
		s.setCopy(cp)
		s.state.LastRefresh = cp.Time
		s.log.Info("zone copy found", "file", cfg.File, "serial", cp.SOA.Serial, "transfer", cp.Transfer)
	case errors.Is(err, fs.ErrNotExist):
	default:
		s.log.Warn("zone copy not usable for IXFR; the first transfer is an AXFR", "file", cfg.File, "error", err)
	}
	return s
}

// setCopy records cp as the current copy. The caller holds s.mu or owns
// s alone.
func (s *Secondary) setCopy(cp *Copy) {
	s.copy = cp
	s.state.HasCopy, s.state.Serial = true, cp.SOA.Serial
	s.state.Transfer, s.state.LastTransfer, s.state.Primary = cp.Transfer, cp.Time, cp.Primary
	s.state.Records = cp.Records
}

// Zone returns the zone name.
func (s *Secondary) Zone() string { return s.cfg.Zone }

// State returns a snapshot of the copy's state.
func (s *Secondary) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if s.copy != nil && !st.LastRefresh.IsZero() {
		st.Expires = st.LastRefresh.Add(time.Duration(s.copy.SOA.Expire) * time.Second)
	}
	return st
}

// Notify starts a refresh at once, or right after the one in progress.
func (s *Secondary) Notify() {
	select {
	case s.notify <- struct{}{}:
	default: // a refresh is queued already
	}
}

// Run refreshes the copy now, then on the SOA refresh timer, on the retry
// timer after a failure, and on each Notify, until ctx ends.
func (s *Secondary) Run(ctx context.Context) {
	wait := time.Duration(0)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.notify:
			t.Stop()
		case <-t.C:
		}
		err := s.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		wait = nextInterval(s.soa(), err != nil)
		s.state.NextRefresh = s.cfg.Now().Add(wait)
		s.mu.Unlock()
	}
}

// soa returns the SOA record of the copy, or nil. The caller holds s.mu.
func (s *Secondary) soa() *dns.SOA {
	if s.copy == nil {
		return nil
	}
	return s.copy.SOA
}

// nextInterval returns the wait before the next refresh: the SOA refresh
// timer after a success, its retry timer after a failure (RFC 1034
// section 4.3.5), within minInterval and maxInterval.
func nextInterval(soa *dns.SOA, failed bool) time.Duration {
	if soa == nil {
		return retryWithoutCopy
	}
	seconds := soa.Refresh
	if failed {
		seconds = soa.Retry
	}
	return min(max(time.Duration(seconds)*time.Second, minInterval), maxInterval)
}

// Refresh checks the zone's serial on each primary in turn and transfers
// the zone from the first that has a newer one. It returns nil once a
// primary has confirmed the copy or sent a newer one. Otherwise it returns
// the failure of every primary, which the state keeps, and the previous
// copy stays.
func (s *Secondary) Refresh(ctx context.Context) error {
	var errs []error
	for _, p := range s.cfg.Primaries {
		err := s.refreshFrom(ctx, p)
		if err == nil {
			s.succeeded()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("zone refresh failed; the previous copy keeps serving", "primary", p.String(), "error", err)
		errs = append(errs, fmt.Errorf("primary %s: %w", p, err))
	}
	err := errors.Join(errs...)
	s.failed(err)
	return err
}

func (s *Secondary) refreshFrom(ctx context.Context, primary netip.AddrPort) error {
	soa, err := s.client.querySOA(ctx, primary)
	if err != nil {
		return err
	}
	s.mu.Lock()
	have := s.copy
	s.mu.Unlock()
	if have != nil && !SerialLess(have.SOA.Serial, soa.Serial) {
		if soa.Serial != have.SOA.Serial {
			s.log.Warn("primary has an older serial than the copy; keeping the copy",
				"primary", primary.String(), "serial", have.SOA.Serial, "primary_serial", soa.Serial)
		}
		return nil
	}
	start := s.cfg.Now()
	cp, err := s.transfer(ctx, primary, have)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.setCopy(cp)
	s.mu.Unlock()
	s.log.Info("zone transferred", "primary", primary.String(), "transfer", cp.Transfer,
		"serial", cp.SOA.Serial, "records", cp.Records, "seconds", s.cfg.Now().Sub(start).Seconds())
	s.cfg.Loaded()
	return nil
}

// transfer gets a new copy from primary: an IXFR from the copy have when
// there is one, else or when the IXFR fails, an AXFR.
func (s *Secondary) transfer(ctx context.Context, primary netip.AddrPort, have *Copy) (*Copy, error) {
	if have == nil {
		return s.client.axfr(ctx, primary, s.cfg.File)
	}
	cp, err := s.client.ixfr(ctx, primary, have, s.cfg.File)
	if err == nil || ctx.Err() != nil {
		return cp, err
	}
	var tsigErr *TSIGError
	if errors.As(err, &tsigErr) {
		return nil, err // an AXFR would fail the same way
	}
	s.log.Info("IXFR failed; trying AXFR", "primary", primary.String(), "serial", have.SOA.Serial, "error", err)
	cp, axfrErr := s.client.axfr(ctx, primary, s.cfg.File)
	if axfrErr != nil {
		return nil, fmt.Errorf("IXFR: %w; AXFR: %w", err, axfrErr)
	}
	return cp, nil
}

// succeeded records a refresh that a primary confirmed.
func (s *Secondary) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Expired {
		s.log.Info("zone copy is current again")
	}
	s.state.LastRefresh, s.state.Error, s.state.Expired = s.cfg.Now(), "", false
}

// failed records a refresh that no primary completed, and whether the
// copy has now expired. An expired copy keeps serving: see docs/policy.md.
func (s *Secondary) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.state.Error, s.state.LastFailure = err.Error(), now
	if s.copy == nil || s.state.Expired {
		return
	}
	expires := s.state.LastRefresh.Add(time.Duration(s.copy.SOA.Expire) * time.Second)
	if now.After(expires) {
		s.state.Expired = true
		s.log.Warn("zone copy expired: no primary confirmed it within the SOA expire timer; still serving it",
			"serial", s.copy.SOA.Serial, "last_refresh", s.state.LastRefresh.UTC().Format(time.RFC3339))
	}
}

// allowNotify reports whether a NOTIFY for the zone may come from addr.
func (s *Secondary) allowNotify(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.cfg.Primaries {
		if p.Addr().Unmap() == addr {
			return true
		}
	}
	for _, p := range s.cfg.AllowNotify {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// countNotify counts a NOTIFY for the zone.
func (s *Secondary) countNotify(accepted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if accepted {
		s.state.NotifiesAccepted++
	} else {
		s.state.NotifiesRefused++
	}
}
